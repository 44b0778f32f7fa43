"""The reads of Cognito, the only authority on who a user is: one user by sub (the workflow),
every user in pages (the sweep), and the sub behind a username (the triggers)."""

from dataclasses import replace

from botocore.exceptions import ClientError

from .errors import InvalidInput
from .policy import CognitoUser, display_name_of, standing


def _user(entry: dict, groups: tuple[str, ...]) -> CognitoUser:
    attributes = {a["Name"]: a["Value"] for a in entry.get("Attributes", [])}
    return CognitoUser(sub=attributes.get("sub", ""), enabled=entry.get("Enabled", False),
                       status=entry.get("UserStatus", "UNKNOWN"), groups=groups,
                       display_name=display_name_of(attributes))


def read_user(idp, user_pool_id: str, sub: str, groups: bool = True) -> CognitoUser | None:
    """The user with this sub now, or None when the pool has none (deleted). Groups are read
    only for a confirmed, enabled user (for the others, status alone decides), and only if
    asked. `sub` must be a validated UUID: it goes into ListUsers' filter."""
    found = idp.list_users(UserPoolId=user_pool_id, Filter=f'sub = "{sub}"', Limit=1)["Users"]
    if not found:
        return None
    user = _user(found[0], ())
    if user.sub != sub:
        raise InvalidInput(f"ListUsers answered another user for sub {sub}")
    if standing(user) != "confirmed" or not groups:
        return user
    return replace(user, groups=tuple(sorted(
        g["GroupName"] for page in idp.get_paginator("admin_list_groups_for_user")
        .paginate(UserPoolId=user_pool_id, Username=found[0]["Username"]) for g in page["Groups"])))


def read_all(idp, user_pool_id: str) -> list[CognitoUser]:
    """Users from ListUsers, groups from ListUsersInGroup: pages of 60, not a call per user."""
    in_group: dict[str, list[str]] = {}
    for page in idp.get_paginator("list_groups").paginate(UserPoolId=user_pool_id):
        for group in page["Groups"]:
            for members in idp.get_paginator("list_users_in_group").paginate(
                    UserPoolId=user_pool_id, GroupName=group["GroupName"]):
                for user in members["Users"]:
                    in_group.setdefault(user["Username"], []).append(group["GroupName"])
    return [_user(user, tuple(sorted(in_group.get(user["Username"], []))))
            for page in idp.get_paginator("list_users").paginate(UserPoolId=user_pool_id)
            for user in page["Users"]]


def sub_of_username(idp, user_pool_id: str, username: str) -> str | None:
    """The sub of the user with this username, or None when the pool has no such user."""
    try:
        user = idp.admin_get_user(UserPoolId=user_pool_id, Username=username)
    except ClientError as e:
        if e.response["Error"]["Code"] != "UserNotFoundException":
            raise
        return None
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("sub")

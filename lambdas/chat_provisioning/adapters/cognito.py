"""The user pool's adapter (ports.UserDirectory), Cognito being the only authority on who a
user is: one user by sub (the workflow), every user in pages (the sweep), and the sub behind a
username (the triggers)."""

from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from ..domain.display_names import display_name_of
from ..domain.errors import InvalidInput
from ..domain.policy import CognitoUser, standing
from .clients import Client


def _user(entry: dict[str, Any], groups: tuple[str, ...]) -> CognitoUser:
    attributes = {a["Name"]: a["Value"] for a in entry.get("Attributes", [])}
    return CognitoUser(sub=attributes.get("sub", ""), enabled=entry.get("Enabled", False),
                       status=entry.get("UserStatus", "UNKNOWN"), groups=groups,
                       display_name=display_name_of(attributes))


class CognitoDirectory:
    def __init__(self, user_pool_id: str, client: Client):
        self.user_pool_id = user_pool_id
        self._client = client

    def user(self, sub: str, groups: bool = True) -> CognitoUser | None:
        """The user with this sub now, or None when the pool has none (deleted). Groups are read
        only for a confirmed, enabled user (for the others, status alone decides), and only if
        asked. `sub` must be a validated UUID: it goes into ListUsers' filter."""
        found = self.listed(sub)
        if found is None:
            return None
        user, username = found
        if standing(user) != "confirmed" or not groups:
            return user
        return replace(user, groups=tuple(sorted(
            g["GroupName"] for page in self._client().get_paginator("admin_list_groups_for_user")
            .paginate(UserPoolId=self.user_pool_id, Username=username) for g in page["Groups"])))

    def listed(self, sub: str) -> tuple[CognitoUser, str] | None:
        """The user with this sub, without its groups, and its username (what the Admin* calls
        take), or None. `sub` must be a validated UUID: it goes into ListUsers' filter."""
        found = self._client().list_users(UserPoolId=self.user_pool_id, Filter=f'sub = "{sub}"', Limit=1)["Users"]
        if not found:
            return None
        user = _user(found[0], ())
        if user.sub != sub:
            raise InvalidInput(f"ListUsers answered another user for sub {sub}")
        return user, found[0]["Username"]

    def all_users(self) -> list[CognitoUser]:
        """Users from ListUsers, groups from ListUsersInGroup: pages of 60, not a call per user."""
        idp, pool = self._client(), self.user_pool_id
        in_group: dict[str, list[str]] = {}
        for page in idp.get_paginator("list_groups").paginate(UserPoolId=pool):
            for group in page["Groups"]:
                for members in idp.get_paginator("list_users_in_group").paginate(
                        UserPoolId=pool, GroupName=group["GroupName"]):
                    for user in members["Users"]:
                        in_group.setdefault(user["Username"], []).append(group["GroupName"])
        return [_user(user, tuple(sorted(in_group.get(user["Username"], []))))
                for page in idp.get_paginator("list_users").paginate(UserPoolId=pool)
                for user in page["Users"]]

    def sub_of_username(self, username: str) -> str | None:
        """The sub of the user with this username, or None when the pool has no such user."""
        try:
            user = self._client().admin_get_user(UserPoolId=self.user_pool_id, Username=username)
        except ClientError as e:
            if e.response["Error"]["Code"] != "UserNotFoundException":
                raise
            return None
        sub: str | None = {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("sub")
        return sub

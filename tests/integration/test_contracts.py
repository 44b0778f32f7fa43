"""The fakes' contract: each scenario runs on a fake of tests/fakes.py and on the real adapter
(SynapseAdmin on the session's real Synapse; CognitoDirectory on moto's Cognito), and must see
the same answers. What the unit tier learns through a fake is then true of the real thing."""

import time
import uuid

import boto3
import pytest
from moto import mock_aws

from chat_provisioning.adapters.audit_table import DynamoAuditStore
from chat_provisioning.adapters.cognito import CognitoDirectory
from chat_provisioning.domain.errors import (
    LevelBeyondTheBot,
    RoomNotFound,
    SynapseForbidden,
    SynapseRejected,
    UserDeactivated,
)
from chat_provisioning.domain.models import Action
from tests.fakes import FakeAuditStore, FakeChatServer, FakeDirectory, FakeRoomLocks


@pytest.fixture(params=["fake", "synapse"])
def chat(request, local):
    rooms = [r.room_id for r in local.config.rooms.values()]
    return FakeChatServer(rooms, local.synapse.bot_user_id) if request.param == "fake" else local.synapse


def test_a_user_is_created_once_tied_to_its_sub_and_deactivated(chat, local, sub):
    user = local.user_id(sub)
    assert chat.user(user) is None
    assert (chat.upsert_user(user, "Aaron", sub, "cognito").created,
            chat.upsert_user(user, None, sub, "cognito").created) == (True, False)
    seen = chat.user(user)
    assert (seen["deactivated"], seen["displayname"], seen["external_ids"]) == (
        False, "Aaron", [{"auth_provider": "cognito", "external_id": sub}])
    chat.require_active(user)
    assert chat.list_users()[user] == (False, "Aaron")
    room = local.config.rooms["red_room"].room_id
    chat.join(room, user)
    assert chat.deactivate(user, erase=False) is True
    assert chat.user(user)["deactivated"] is True and chat.list_users()[user].deactivated is True
    assert eventually(lambda: user not in chat.room_members(room))  # it leaves its rooms (in the background)
    with pytest.raises(UserDeactivated):
        chat.require_active(user)
    assert chat.upsert_user(user, None, sub, "cognito").deactivated is True
    chat.reactivate(user)
    chat.require_active(user)
    nobody = local.user_id(str(uuid.uuid4()))
    assert chat.deactivate(nobody, erase=False) is False
    with pytest.raises(SynapseRejected):  # 404 M_NOT_FOUND
        chat.require_active(nobody)


def eventually(check, seconds: float = 10.0) -> bool:
    """Whether `check()` holds within `seconds`: Synapse removes a deactivated user from its rooms
    in the background (seen late on 1.163.2; 1.105.1 had done it by the time it answered)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def account_made_elsewhere(chat, local, user_id: str, links: tuple[tuple[str, str], ...]) -> None:
    """An account this workflow did not make: the old Lambda's (no link), or one an SSO login
    linked to its provider."""
    if isinstance(chat, FakeChatServer):
        chat.add_user(user_id, links)
    else:
        local.account_made_elsewhere(user_id, links=links)


def links_of(chat, user_id: str) -> list[tuple[str, str]]:
    return sorted((e["auth_provider"], e["external_id"]) for e in chat.user(user_id)["external_ids"])


@pytest.mark.parametrize("linked", [False, True], ids=["old-lambda", "sso-linked"])
def test_an_account_made_elsewhere_is_adopted_and_keeps_every_other_link(chat, local, sub, linked):
    user = local.user_id(sub)
    links = (("oidc-google", f"g-{sub[:8]}"),) if linked else ()  # an external id is one user's
    account_made_elsewhere(chat, local, user, links)
    adopted = chat.upsert_user(user, "Irena", sub, "cognito")
    assert (adopted.created, adopted.adopted, adopted.changed) == (False, True, True)
    assert links_of(chat, user) == sorted([*links, ("cognito", sub)])
    again = chat.upsert_user(user, "Irena", sub, "cognito")
    assert (again.created, again.adopted, again.changed) == (False, False, False)  # nothing sent
    renamed = chat.upsert_user(user, "Irena L.", sub, "cognito")
    assert (renamed.adopted, renamed.changed) == (False, True)
    assert chat.user(user)["displayname"] == "Irena L."
    chat.deactivate(user, erase=False)
    chat.reactivate(user)
    assert links_of(chat, user) == sorted([*links, ("cognito", sub)])  # deactivation keeps links


def test_rooms_joins_levels_and_kicks(chat, local, sub):
    user = local.user_id(sub)
    room = local.config.rooms["analysts"].room_id
    chat.upsert_user(user, None, sub, "cognito")
    assert (chat.join(room, user), chat.join(room, user)) == (True, False)
    assert room in chat.joined_rooms(user) and user in chat.room_members(room)
    assert chat.set_power_levels(room, {user: 50}) == {user: 50}
    assert chat.set_power_levels(room, {user: 50}) == {}
    levels = chat.power_levels(room)
    assert levels["users"][user] == 50 and levels["users"][chat.bot_user_id] == 100
    assert chat.set_power_levels(room, {user: None}) == {user: None}
    assert user not in chat.power_levels(room)["users"]
    chat.kick(room, user, reason="contract")
    assert room not in chat.joined_rooms(user) and user not in chat.room_members(room)
    with pytest.raises(SynapseForbidden):  # no longer a member
        chat.kick(room, user, reason="contract")


def test_a_peer_of_the_bot_can_be_neither_demoted_nor_kicked(chat, local, sub):
    user, room = local.user_id(sub), local.config.rooms["staff"].room_id
    chat.upsert_user(user, None, sub, "cognito")
    chat.join(room, user)
    with pytest.raises(LevelBeyondTheBot):  # the bot's own level: never granted, it could not be taken back
        chat.set_power_levels(room, {user: 100})
    if isinstance(chat, FakeChatServer):  # set by hand, as Phenom's Staff were
        chat.levels[room]["users"][user] = 100
    else:
        local.set_level_by_hand(room, user, 100)
    with pytest.raises(LevelBeyondTheBot):
        chat.set_power_levels(room, {user: None})
    with pytest.raises(SynapseForbidden):
        chat.kick(room, user, reason="contract")
    assert user in chat.room_members(room) and chat.power_levels(room)["users"][user] == 100


def test_a_rooms_thresholds_are_lowered_once_under_a_lease_keeping_the_bot(chat, local):
    """A room as Synapse's private_chat preset makes it: changing levels needs 100."""
    room = local.admin("POST", "/_matrix/client/v3/createRoom",
                       json={"preset": "private_chat", "room_version": "10"}).json()["room_id"]
    if isinstance(chat, FakeChatServer):
        chat.levels[room], chat.members[room] = local.synapse.power_levels(room), {chat.bot_user_id}
    with FakeRoomLocks().hold(room) as lease:
        changed = chat.lower_thresholds(room, 99, lease)
        assert changed["events.m.room.power_levels"] == 99 and set(changed.values()) == {99}
        assert chat.lower_thresholds(room, 99, lease) == {}
    after = chat.power_levels(room)
    assert after["events"]["m.room.power_levels"] == 99 and after["users"][chat.bot_user_id] == 100


def test_every_session_of_a_user_ends_once(chat, local, sub):
    user = local.user_id(sub)
    chat.upsert_user(user, None, sub, "cognito")
    for device in ("PHONE", "LAPTOP"):  # as two logins would leave them
        if isinstance(chat, FakeChatServer):
            chat.sessions.setdefault(user, set()).add(device)
        else:
            local.admin("POST", f"/_synapse/admin/v2/users/{user}/devices",
                        json={"device_id": device}).raise_for_status()
    assert (chat.log_out(user), chat.log_out(user)) == (2, 0)
    assert chat.log_out(f"@{uuid.uuid4()}:{local.config.server_name}") == 0  # nobody: no session


def test_an_unknown_room(chat, local, sub):
    user, room = local.user_id(sub), f"!nosuchroom:{local.config.server_name}"
    chat.upsert_user(user, None, sub, "cognito")
    assert chat.room_members(room) is None
    with pytest.raises(RoomNotFound):
        chat.join(room, user)
    with pytest.raises(RoomNotFound):
        chat.set_power_levels(room, {user: 50})


def cognito_pool():
    """moto's Cognito with four users, and a fake directory holding the same; their subs and
    usernames by name."""
    idp = boto3.client("cognito-idp", region_name="us-east-1")
    pool = idp.create_user_pool(PoolName="contract", UsernameAttributes=["email"])["UserPool"]["Id"]
    fake, users = FakeDirectory(pool), {}
    for group in ("staff", "analysts"):
        idp.create_group(UserPoolId=pool, GroupName=group)
    for name in ("staff", "disabled", "unconfirmed", "plain"):
        email = f"{name}@example.test"
        created = idp.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS", UserAttributes=[
            {"Name": "email", "Value": email}, {"Name": "name", "Value": name}])["User"]
        username, sub = created["Username"], {a["Name"]: a["Value"] for a in created["Attributes"]}["sub"]
        users[name] = (sub, username)
        if name != "unconfirmed":
            idp.admin_set_user_password(UserPoolId=pool, Username=username, Password="Passw0rd!x", Permanent=True)
        groups = ("analysts", "staff") if name in ("staff", "disabled") else ()
        for group in groups:
            idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        if name == "disabled":
            idp.admin_disable_user(UserPoolId=pool, Username=username)
        fake.add(sub, groups, enabled=name != "disabled",
                 status="FORCE_CHANGE_PASSWORD" if name == "unconfirmed" else "CONFIRMED",
                 display_name=name, username=username)
    return CognitoDirectory(pool, lambda: idp), fake, users


def test_the_directory_answers_as_cognito_does():
    with mock_aws():
        real, fake, users = cognito_pool()
        for name, (sub, username) in users.items():
            for groups in (True, False):
                assert fake.user(sub, groups) == real.user(sub, groups), (name, groups)
            assert fake.sub_of_username(username) == real.sub_of_username(username) == sub
        assert fake.user(str(uuid.uuid4())) is None is real.user(str(uuid.uuid4()))
        assert fake.sub_of_username("nobody") is None is real.sub_of_username("nobody")
        assert sorted(fake.all_users(), key=lambda u: u.sub) == sorted(real.all_users(), key=lambda u: u.sub)
        assert real.user(users["staff"][0]).groups == ("analysts", "staff")
        assert real.user(users["disabled"][0]).groups == ()  # status decides: no groups read


def test_the_audit_store_answers_as_dynamodb_does():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="audit", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "sub", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "sub", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}])
        sub, run = str(uuid.uuid4()), "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
        done = (Action(step="ProvisionUser", action="create_user", outcome="created"),
                Action(step="DeactivateUser", action="deactivate_user", outcome="deactivated"))
        answers = []
        for store in (FakeAuditStore(), DynamoAuditStore("audit", lambda: dynamodb)):
            answers.append((
                store.record_actions(sub, "@u:x", run, done, "AdminDisableUser"),
                store.record_actions(sub, "@u:x", run, done, "AdminDisableUser"),  # a retried step
                store.record_failure(sub, run, 0, "FAILED", "JoinRooms", "SynapseUnavailable", "503", "signup"),
                store.record_failure(sub, run, 0, "FAILED", "JoinRooms", "SynapseUnavailable", "503", "signup"),
                store.deactivated_by_workflow(sub),
                [{k: v for k, v in i.items() if k != "time"} for i in store.trail(sub)]))
        assert answers[0] == answers[1]
        assert answers[0][:5] == (2, 0, True, False, True)


"""The Synapse adapter against a real Synapse: each test against production's release (the
session's local environment) and against the current one (a Synapse of this module's own)."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import httpx
import pytest

from chat_provisioning.adapters.synapse import SynapseAdmin
from chat_provisioning.domain import errors
from chat_provisioning.domain.config import ChatConfig
from local_run import env, synapse_server
from local_run.env import free_port


class Started(NamedTuple):
    """What these tests read of a local environment's state (local_run.state.LocalState)."""
    synapse_url: str
    synapse_version: str


@dataclass
class SynapseAlone:
    """What these tests use of a local environment, for a Synapse without the AWS around it."""
    state: Started
    config: ChatConfig
    token: str
    synapse: SynapseAdmin
    user_id = env.LocalEnv.user_id
    admin = env.LocalEnv.admin


@pytest.fixture(scope="module", params=[synapse_server.PRODUCTION, synapse_server.CURRENT])
def local(request, tmp_path_factory, config):
    """A Synapse of this release, set up as the local run sets it up: the adapter's contract
    holds on both."""
    if request.param == synapse_server.chosen_version():
        yield request.getfixturevalue("local")  # the session's
        return
    state_dir = tmp_path_factory.mktemp(f"synapse-{request.param}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(synapse_server.VERSION_ENV, request.param)
        started = synapse_server.start(state_dir, free_port(), config)
    try:
        token, rooms = synapse_server.bootstrap(state_dir, started["url"], started["shared_secret"],
                                                started["server_name"], config)
        alone = config.model_copy(update={"server_name": started["server_name"], "rooms": rooms})
        yield SynapseAlone(
            Started(started["url"], request.param), alone, token,
            SynapseAdmin(started["url"], lambda refresh=False: token, alone.bot_user_id))
    finally:
        synapse_server.stop(started["pid"])


@pytest.fixture(scope="module")
def synapse(local) -> SynapseAdmin:
    return local.synapse


@pytest.fixture(scope="module")
def room(local) -> str:
    return local.config.rooms["analysts"].room_id  # invite-only, like every configured room


def test_it_is_the_release_asked_for(local):
    version = httpx.get(f"{local.state.synapse_url}/_synapse/admin/v1/server_version",
                        headers={"Authorization": f"Bearer {local.token}"}).json()["server_version"]
    assert version.split(" ")[0] == local.state.synapse_version


def test_create_twice_is_created_then_updated(local, synapse, sub):
    first = synapse.upsert_user(local.user_id(sub), "Ann", external_id=sub, auth_provider="cognito")
    second = synapse.upsert_user(local.user_id(sub), "Ann", external_id=sub, auth_provider="cognito")
    assert (first.created, second.created) == (True, False)
    assert not first.deactivated and not second.deactivated


def test_concurrent_creates_both_succeed(local, synapse):
    """Synapse answers the loser of two concurrent creates 400 M_USER_IN_USE (seen in 16 of 20
    trials here); it happens when a timed-out PUT is served while the retry arrives."""
    for _ in range(5):
        sub = str(uuid.uuid4())
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _, sub=sub: synapse.upsert_user(
                local.user_id(sub), "Ann", external_id=sub, auth_provider="cognito"), range(2)))
        assert sorted(r.created for r in results) == [False, True]


def test_external_id_ties_the_user_to_cognito(local, synapse, sub):
    synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
    user = local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(sub)}").json()
    assert user["external_ids"] == [{"auth_provider": "cognito", "external_id": sub}]


def test_an_sso_link_is_kept_and_an_unchanged_user_is_not_written(local, synapse, sub):
    """Synapse's PUT replaces the whole external_ids list, on both releases: the adapter merges."""
    user, sso = local.user_id(sub), {"auth_provider": "oidc-google", "external_id": f"g-{sub[:8]}"}
    local.admin("PUT", f"/_synapse/admin/v2/users/{user}", json={"external_ids": [sso]}).raise_for_status()
    assert synapse.upsert_user(user, None, external_id=sub, auth_provider="cognito").adopted
    links = local.admin("GET", f"/_synapse/admin/v2/users/{user}").json()["external_ids"]
    assert sorted(links, key=lambda e: e["auth_provider"]) == [{"auth_provider": "cognito", "external_id": sub}, sso]
    assert synapse.upsert_user(user, None, external_id=sub, auth_provider="cognito").changed is False


def test_a_banned_account_made_elsewhere_is_not_written(local, synapse, sub):
    """A Matrix admin deactivated an old account: it gets no tie of ours while the ban stands."""
    user = local.user_id(sub)
    local.admin("PUT", f"/_synapse/admin/v2/users/{user}", json={}).raise_for_status()
    local.admin("POST", f"/_synapse/admin/v1/deactivate/{user}", json={}).raise_for_status()
    seen = synapse.upsert_user(user, "Someone", external_id=sub, auth_provider="cognito")
    assert (seen.deactivated, seen.changed) == (True, False)
    assert local.admin("GET", f"/_synapse/admin/v2/users/{user}").json()["external_ids"] == []


def test_join_twice_in_invite_only_room(local, synapse, room, sub):
    synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
    assert synapse.join(room, local.user_id(sub)) is True
    assert synapse.join(room, local.user_id(sub)) is False  # Synapse said 403 "already in the room"
    assert room in synapse.joined_rooms(local.user_id(sub))


def test_deactivated_user_is_refused(local, synapse, sub):
    synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
    local.admin("POST", f"/_synapse/admin/v1/deactivate/{local.user_id(sub)}", json={}).raise_for_status()
    again = synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
    assert again.deactivated
    with pytest.raises(errors.UserDeactivated):
        synapse.require_active(local.user_id(sub))


def test_unknown_room_is_room_not_found(local, synapse, sub):
    synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
    with pytest.raises(errors.RoomNotFound):
        synapse.join(f"!nosuchroom:{local.config.server_name}", local.user_id(sub))
    with pytest.raises(errors.RoomNotFound):
        synapse.set_power_levels(f"!nosuchroom:{local.config.server_name}", {local.user_id(sub): 50})


def test_power_level_round_trip_keeps_the_bot(local, synapse, sub):
    staff = local.config.rooms["staff"].room_id
    user = local.user_id(sub)
    synapse.upsert_user(user, None, external_id=sub, auth_provider="cognito")
    synapse.join(staff, user)
    assert synapse.set_power_levels(staff, {user: 50}) == {user: 50}
    assert synapse.set_power_levels(staff, {user: 50}) == {}
    levels = synapse.power_levels(staff)
    assert levels["users"][user] == 50 and levels["users"][synapse.bot_user_id] == 100
    assert synapse.set_power_levels(staff, {user: 0}) == {user: 0}  # back to default: not listed
    assert user not in synapse.power_levels(staff)["users"]


def test_bad_token_is_auth_failed(local, sub):
    bad = SynapseAdmin(local.state.synapse_url, lambda refresh=False: "not-a-token",
                       local.synapse.bot_user_id)
    with pytest.raises(errors.SynapseAuthFailed):
        bad.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")


def test_non_admin_token_is_forbidden(local, sub):
    user = local.user_id(sub)
    local.synapse.upsert_user(user, None, external_id=sub, auth_provider="cognito")
    login = local.admin("POST", f"/_synapse/admin/v1/users/{user}/login", json={}).json()["access_token"]
    plain = SynapseAdmin(local.state.synapse_url, lambda refresh=False: login, user)
    with pytest.raises(errors.SynapseForbidden):
        plain.upsert_user(user, None, external_id=sub, auth_provider="cognito")


def test_server_down_is_unavailable(sub):
    down = SynapseAdmin(f"http://127.0.0.1:{free_port()}", lambda refresh=False: "t", "@bot:x", timeout=2)
    with pytest.raises(errors.SynapseUnavailable):
        down.upsert_user(f"@{sub}:x", None, external_id=sub, auth_provider="cognito")

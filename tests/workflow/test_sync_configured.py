"""Role sync under settings the other tests leave at their defaults: a role whose level is
below the bot's, so demotion is possible; leaving rooms on role removal; an allow-listed user."""

import uuid

import pytest

from chat_provisioning.domain.config import RoleGrant
from local_run import env
from local_run.aws_events import cloudtrail_event

UNMANAGED = str(uuid.uuid4())


@pytest.fixture(scope="module")
def moderated(tmp_path_factory, config):
    roles = {**config.roles, "analysts": (RoleGrant(room="analysts", power_level=50),)}
    custom = config.model_copy(update={"roles": roles, "leave_rooms_on_role_removal": True,
                                       "unmanaged_subs": (UNMANAGED,)})
    with env.running(tmp_path_factory.mktemp("moderated"), custom) as local:
        yield local


def test_demotion_removal_and_re_add(moderated, sub):
    local = moderated
    local.cognito.signup(sub, ["analysts", "experiencers"], None)
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 50), ("Experiencers", 0)}

    removed = local.cognito.change(sub, "AdminRemoveUserFromGroup", "analysts")
    assert removed["status"] == "SUCCEEDED"
    # demoted to the room default (its entry dropped), then out of the room (leave configured)
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Experiencers", 0)}
    levels = local.synapse.power_levels(local.config.rooms["analysts"].room_id)["users"]
    assert local.user_id(sub) not in levels

    assert local.cognito.change(sub, "AdminAddUserToGroup", "analysts")["status"] == "SUCCEEDED"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 50), ("Experiencers", 0)}
    outcomes = [(a["step"], a["action"], a["outcome"], a.get("event")) for a in local.audit.trail(sub)]
    assert ("AssignRoles", "set_power_level", "set:default", "AdminRemoveUserFromGroup") in outcomes
    assert ("AssignRoles", "leave", "left", "AdminRemoveUserFromGroup") in outcomes
    assert ("AssignRoles", "set_power_level", "set:50", "AdminAddUserToGroup") in outcomes


def test_allow_listed_user_is_never_touched(moderated):
    local = moderated
    local.cognito.signup(UNMANAGED, [], None)  # provisioned once, say by hand before the allow-list
    before = local.inspector.rooms(UNMANAGED)
    result = local.cognito.change(UNMANAGED, "AdminDisableUser")
    assert result["status"] == "SUCCEEDED"
    assert local.inspector.rooms(UNMANAGED) == before  # not deactivated
    assert local.audit.trail(UNMANAGED)[-1]["outcome"] == "skipped:unmanaged"


def test_unknown_user_and_malformed_events_change_nothing(moderated, sub):
    local = moderated
    # in neither Cognito nor Synapse: an explicit, audited no-op
    result = local.events.send_sync_event({"sub": sub})
    assert result["status"] == "SUCCEEDED"
    assert local.audit.trail(sub)[-1]["outcome"] == "skipped:no_matrix_user"
    # CloudTrail detail without a sub or a username: nothing to resolve, nothing started
    malformed = cloudtrail_event("AdminDisableUser", local.state.user_pool_id, None)
    del malformed["detail"]["requestParameters"]["username"]
    malformed = local.events.deliver(malformed)
    assert malformed["matched"] and malformed["started"] is False

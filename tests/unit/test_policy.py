import pytest
from pydantic import ValidationError

from chat_provisioning.domain.config import ChatConfig
from chat_provisioning.domain.errors import InvalidInput, LevelBeyondTheBot, PowerLevelForbidden
from chat_provisioning.domain.policy import (
    CognitoUser,
    beyond_the_bot,
    beyond_the_bots_kick,
    desired_memberships,
    split_groups,
    standing,
    thresholds_above,
    user_id_for,
    with_power_level,
    with_thresholds_at_most,
)
from chat_provisioning.handlers.runtime import FunctionEnv
from stacks import wiring
from tests.fakes import BOT, SERVER, SUB


def rooms_of(memberships):
    return [(m.room, m.power_level) for m in memberships]


def test_everyone_gets_the_red_room_only(config):
    assert rooms_of(desired_memberships([], config)) == [("red_room", None)]


def test_staff_get_the_staff_room_at_99(config):
    assert rooms_of(desired_memberships(["staff"], config)) == [("red_room", None), ("staff", 99)]


def test_groups_combine_in_config_order(config):
    got = rooms_of(desired_memberships(["experiencers", "analysts", "staff"], config))
    assert got == [("red_room", None), ("staff", 99), ("analysts", None), ("experiencers", None)]


def test_unknown_groups_grant_nothing_and_are_named(config):
    cfg = config.model_copy(update={"ignored_groups": ("hasura-admins",)})
    assert split_groups(["staff", "admins", "hasura-admins", "staff"], cfg) == (("staff",), ("admins",))
    assert rooms_of(desired_memberships(["admins", "hasura-admins"], cfg)) == [("red_room", None)]


def test_status_decides_first():
    assert standing(None) == "absent"
    assert standing(CognitoUser(SUB, enabled=False, groups=("staff",), status="CONFIRMED")) == "disabled"
    assert standing(CognitoUser(SUB, enabled=True, status="EXTERNAL_PROVIDER")) == "confirmed"
    for status in ("UNCONFIRMED", "FORCE_CHANGE_PASSWORD", "RESET_REQUIRED", "UNKNOWN"):
        assert standing(CognitoUser(SUB, enabled=True, status=status)) == "unconfirmed"


def test_user_id_is_lowercased_sub_on_the_server(config):
    assert user_id_for(SUB.upper(), config) == f"@{SUB}:{SERVER}"


@pytest.mark.parametrize("bad", [None, "", "not-a-uuid", 42, SUB + "x", "../" + SUB])
def test_bad_sub_is_a_typed_error(config, bad):
    with pytest.raises(InvalidInput):
        user_id_for(bad, config)


def test_config_refuses_room_without_server_part(config):
    data = config.model_dump()
    data["rooms"]["red_room"]["room_id"] = "!jFXGFANpXTXXgNkdNi"
    with pytest.raises(ValidationError, match="full room ID"):
        ChatConfig.model_validate(data)


def test_config_refuses_a_bot_localpart_matrix_refuses(config):
    with pytest.raises(ValidationError, match="not a valid Matrix localpart"):
        ChatConfig.model_validate({**config.model_dump(), "bot_localpart": "Provisioner Bot"})


def test_config_refuses_role_naming_unknown_room(config):
    data = config.model_dump()
    data["roles"]["staff"] = [{"room": "lobby", "power_level": 100}]
    with pytest.raises(ValidationError, match="lobby"):
        ChatConfig.model_validate(data)


def test_config_travels_through_the_lambda_env(config):
    env = FunctionEnv.model_validate(wiring.lambda_environment(config, "audit", "locks"))
    assert env.config.to_env() == config.to_env()
    assert len(config.to_env()) < 2048  # a function's whole environment is capped at 4 KB


LEVELS = {"users": {BOT: 100, "@other:x": 50}, "users_default": 0,
          "events": {"m.room.name": 50}}


def test_power_level_keeps_bot_and_others():
    new = with_power_level(LEVELS, "@u:x", 99, BOT)
    assert new["users"] == {**LEVELS["users"], "@u:x": 99}
    assert new["events"] == LEVELS["events"]


def test_power_level_unchanged_is_none():
    assert with_power_level(LEVELS, "@other:x", 50, BOT) is None


def test_default_level_is_not_listed():
    new = with_power_level(LEVELS, "@other:x", 0, BOT)
    assert "@other:x" not in new["users"] and new["users"][BOT] == 100


def test_the_bots_own_level_is_never_granted():
    """A peer's level is one Matrix lets nobody change: granted, it could never be taken back."""
    with pytest.raises(PowerLevelForbidden, match="the bot's own"):
        with_power_level(LEVELS, "@u:x", 100, BOT)


def test_a_role_at_the_bots_level_is_refused_at_synth(config):
    data = config.model_dump()
    data["roles"]["staff"] = [{"room": "staff", "power_level": 100}]
    with pytest.raises(ValidationError, match=r"roles at the bot's level \(100\) or above: \['staff \(staff: 100\)'\]"):
        ChatConfig.model_validate(data)
    assert ChatConfig.model_validate({**data, "bot_power_level": 101}).roles["staff"][0].power_level == 100


def test_a_sweep_that_would_take_most_of_the_steps_concurrency_is_refused_at_synth(config):
    """One function serves every step of every run: a sweep takes at most half of its
    reserved concurrency, so that a sign-up finds room while it runs."""
    data = config.model_dump()
    with pytest.raises(ValidationError, match="sweep_max_concurrency 6 is over half of synapse_concurrency 10"):
        ChatConfig.model_validate({**data, "sweep_max_concurrency": 6, "synapse_concurrency": 10})
    assert ChatConfig.model_validate({**data, "sweep_max_concurrency": 5, "synapse_concurrency": 10})
    assert ChatConfig.model_validate({**data, "sweep_max_concurrency": 50, "synapse_concurrency": "none"})


def test_above_the_bot_is_refused():
    with pytest.raises(PowerLevelForbidden, match="above the bot"):
        with_power_level({"users": {BOT: 50}}, "@u:x", 100, BOT)


def test_bot_peer_cannot_be_changed():
    with pytest.raises(PowerLevelForbidden, match="peer"):
        with_power_level({"users": {BOT: 100, "@u:x": 100}}, "@u:x", 0, BOT)


def test_bot_itself_is_never_changed():
    with pytest.raises(PowerLevelForbidden):
        with_power_level(LEVELS, BOT, 50, BOT)


@pytest.mark.parametrize("network, problem", [
    ({"vpc_id": "vpc-123"}, "vpc_id"),
    ({"vpc_id": "vpc-0a1b2c3d4e5f60711"}, "needs subnet_ids"),
    ({"vpc_id": "vpc-0a1b2c3d4e5f60711", "subnet_ids": ["subnet-0a1b2c3d4e5f60718"],
      "security_group_ids": ["sg-0a1b2c3d4e5f60710"]}, "one zone per subnet"),
])
def test_config_refuses_incomplete_network(config, network, problem):
    with pytest.raises(ValidationError, match=problem):
        ChatConfig.model_validate({**config.model_dump(), "network": network})


def test_the_bot_changes_no_level_below_the_level_the_power_levels_event_asks_for():
    room = {"users": {BOT: 100, "@u:x": 0}, "events": {"m.room.power_levels": 101}}
    assert "may not change levels here" in beyond_the_bot(room, "@u:x", 50, BOT)
    assert beyond_the_bot({"users": {BOT: 100}, "state_default": 100}, "@u:x", 50, BOT) is None
    assert "may not change levels" in beyond_the_bot({"users": {BOT: 40}}, "@u:x", 10, BOT)  # state_default 50
    with pytest.raises(LevelBeyondTheBot):
        with_power_level(room, "@u:x", 50, BOT)


def test_the_bot_removes_only_below_its_level_at_the_rooms_kick_level():
    assert beyond_the_bots_kick({"users": {BOT: 100, "@u:x": 50}}, "@u:x", BOT) is None
    assert "peer" in beyond_the_bots_kick({"users": {BOT: 100, "@u:x": 100}}, "@u:x", BOT)
    assert "may not remove members" in beyond_the_bots_kick({"users": {BOT: 100}, "kick": 101}, "@u:x", BOT)


ROOM_AS_SYNAPSE_MAKES_IT = {"users": {BOT: 100}, "users_default": 0, "events_default": 0, "state_default": 50,
                            "ban": 50, "kick": 50, "redact": 50, "invite": 0, "historical": 100,
                            "events": {"m.room.name": 50, "m.room.power_levels": 100, "m.room.tombstone": 100},
                            "notifications": {"room": 50}}


def test_a_rooms_thresholds_are_lowered_to_its_admins_level_and_no_further():
    """Staff at 99 keep every power the room asks 100 for; the bot alone stays above them."""
    content = {**ROOM_AS_SYNAPSE_MAKES_IT, "ban": 150}  # above the bot: only someone above it can lower it
    assert thresholds_above(content, 99, BOT) == ({"events.m.room.power_levels": 100, "events.m.room.tombstone": 100},
                                                  ["ban"])
    wanted, changed = with_thresholds_at_most(content, 99, BOT)
    assert changed == {"events.m.room.power_levels": 99, "events.m.room.tombstone": 99}
    assert wanted == {**content, "events": {"m.room.name": 50, "m.room.power_levels": 99, "m.room.tombstone": 99}}
    assert with_thresholds_at_most(wanted, 99, BOT) == (wanted, {})
    assert with_thresholds_at_most(content, 40, BOT)[1] == {
        "events.m.room.name": 40, "events.m.room.power_levels": 40, "events.m.room.tombstone": 40,
        "kick": 40, "notifications.room": 40, "redact": 40, "state_default": 40}
    with pytest.raises(LevelBeyondTheBot, match="may not change this room's levels"):
        with_thresholds_at_most({**content, "users": {BOT: 50}}, 40, BOT)

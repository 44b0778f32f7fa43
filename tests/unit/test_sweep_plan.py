"""The sweep's plan, a pure function: no server."""

from chat_provisioning.sweep import CognitoUser, MatrixSide, plan

A = "0f9e8d7c-1234-4abc-8def-0123456789ab"
B = "1f9e8d7c-1234-4abc-8def-0123456789ab"
SERVER = "chat.thephenom.app"
BOT = f"@phenom-provisioner-bot:{SERVER}"


def uid(sub):
    return f"@{sub}:{SERVER}"


def matrix(config, users, members=None, levels=None, external_ids=None):
    rooms = {r.room_id: frozenset() for r in config.rooms.values()}
    rooms.update(members or {})
    pls = {r.room_id: {"users": {BOT: 100}, "users_default": 0} for r in config.rooms.values()}
    pls.update(levels or {})
    return MatrixSide(users, rooms, pls, external_ids or {})


def kinds(p):
    return sorted((f.sub, f.kind) for f in p.fixes)


def test_in_step_user_needs_nothing(config):
    red = config.rooms["red_room"].room_id
    p = plan([CognitoUser(A, True)], matrix(config, {uid(A): False}, {red: frozenset({uid(A)})}), config)
    assert p.fixes == () and p.requests == {} and p.summary()["users_to_fix"] == 0


def test_missing_user_is_created_by_the_provisioning_workflow(config):
    p = plan([CognitoUser(A, True, ("staff",), "Ann")], matrix(config, {}), config)
    assert kinds(p) == [(A, "create")]
    assert p.requests[A] == {"workflow": "ProvisionUser",
                             "input": {"sub": A, "groups": ["staff"], "display_name": "Ann"}}


def test_staff_missing_room_and_level(config):
    red, staff = config.rooms["red_room"].room_id, config.rooms["staff"].room_id
    p = plan([CognitoUser(A, True, ("staff",))],
             matrix(config, {uid(A): False}, {red: frozenset({uid(A)})}), config)
    assert sorted((f.kind, f.room) for f in p.fixes) == [("join", staff), ("promote", staff)]
    assert p.requests[A]["workflow"] == "SyncUser"


def test_disabled_and_deactivated_users(config):
    p = plan([CognitoUser(A, False), CognitoUser(B, True)],
             matrix(config, {uid(A): False, uid(B): True}), config)
    assert kinds(p) == [(A, "deactivate"), (B, "reactivate")]
    assert p.requests[B]["input"]["reactivate"] is True


def test_matrix_only_users_need_a_cognito_external_id(config):
    users = {uid(A): False, uid(B): False, f"@logan:{SERVER}": False, BOT: False}
    p = plan([], matrix(config, users, external_ids={uid(A): (A,), uid(B): ()}), config)
    assert kinds(p) == [(A, "deactivate")]
    assert [(f.kind, f.subject) for f in p.findings] == [("no_external_id", uid(B))]


def test_out_of_scope_and_bad_input(config):
    cfg = config.model_copy(update={"unmanaged_subs": (B,)})
    rooms = {r.room_id: frozenset() for k, r in config.rooms.items() if k != "experiencers"}
    side = MatrixSide({}, rooms, {r: {} for r in rooms})
    p = plan([CognitoUser("Not-A-Sub", True), CognitoUser(A, True, ("admins",)), CognitoUser(B, True)], side, cfg)
    assert p.fixes == ()
    assert sorted(f.kind for f in p.findings) == ["invalid_sub", "room_missing", "unknown_group"]

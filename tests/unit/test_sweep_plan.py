"""The sweep's plan, a pure function: no server."""

from chat_provisioning.domain.config import RoleGrant
from chat_provisioning.domain.policy import CognitoUser
from chat_provisioning.domain.sweep_plan import MatrixSide, plan
from tests.fakes import BOT, SERVER, sample_config

A = "0f9e8d7c-1234-4abc-8def-0123456789ab"
B = "1f9e8d7c-1234-4abc-8def-0123456789ab"


def uid(sub):
    return f"@{sub}:{SERVER}"


def matrix(config, users, members=None, levels=None, external_ids=None, links=None, names=None):
    """`external_ids`: user -> the subs config's provider ties it to; `links`: user -> other (provider, id);
    `names`: user -> its display name (None for each user not named)."""
    rooms = {r.room_id: frozenset() for r in config.rooms.values()}
    rooms.update(members or {})
    pls = {r.room_id: {"users": {BOT: 100}, "users_default": 0} for r in config.rooms.values()}
    pls.update(levels or {})
    read = {u: tuple((config.auth_provider, i) for i in ids) for u, ids in (external_ids or {}).items()}
    for u, pairs in (links or {}).items():
        read[u] = read.get(u, ()) + tuple(pairs)
    return MatrixSide(users, {u: (names or {}).get(u) for u in users}, rooms, pls, read)


def kinds(p):
    return sorted((f.sub, f.kind) for f in p.fixes)


def test_in_step_user_needs_nothing(config):
    red = config.rooms["red_room"].room_id
    p = plan([CognitoUser(A, True)], matrix(config, {uid(A): False}, {red: frozenset({uid(A)})}), config)
    assert p.fixes == () and p.users == () and p.summary()["users_to_fix"] == 0


def test_missing_confirmed_user_is_created_unconfirmed_ones_never(config):
    p = plan([CognitoUser(A, True, ("staff",), "Ann"), CognitoUser(B, True, status="UNCONFIRMED")],
             matrix(config, {}), config)
    assert kinds(p) == [(A, "create")]
    assert p.users == (A,)  # the subs to sync: each user's workflow reads the rest from Cognito


def test_staff_missing_room_and_level(config):
    red, staff = config.rooms["red_room"].room_id, config.rooms["staff"].room_id
    p = plan([CognitoUser(A, True, ("staff",))],
             matrix(config, {uid(A): False}, {red: frozenset({uid(A)})}), config)
    assert sorted((f.kind, f.room) for f in p.fixes) == [("join", staff), ("promote", staff)]
    assert p.users == (A,)


def test_disabled_is_deactivated_and_deactivated_is_never_reactivated(config):
    p = plan([CognitoUser(A, False), CognitoUser(B, True)],
             matrix(config, {uid(A): False, uid(B): True}), config)
    assert kinds(p) == [(A, "deactivate")]
    assert [(f.kind, f.subject) for f in p.findings] == [("deactivated_in_matrix", B)]


def test_status_decides_before_groups(config):
    """A disabled user with an unknown group is deactivated; an enabled one is planned with
    the groups it has that are roles, and the unknown group is a finding."""
    red = config.rooms["red_room"].room_id
    p = plan([CognitoUser(A, False, ("hasura-admins",)), CognitoUser(B, True, ("hasura-admins", "analysts"))],
             matrix(config, {uid(A): False, uid(B): False}, {red: frozenset({uid(B)})}), config)
    assert kinds(p) == [(A, "deactivate"), (B, "join")]
    assert [(f.kind, f.subject) for f in p.findings] == [("unknown_group", B)]


def test_an_account_cognito_no_longer_knows_is_deactivated_if_it_is_that_users(config):
    """Tied by our provider, or (the JWT rule) linked to nobody: that Cognito user's, whom
    Cognito deleted. Linked to another provider only: someone else's, left alone. Without the
    JWT rule, only the tie counts."""
    C = "2f9e8d7c-1234-4abc-8def-0123456789ab"
    users = {uid(A): False, uid(B): False, uid(C): False, f"@logan:{SERVER}": False, BOT: False}
    side = matrix(config, users, external_ids={uid(A): (A,), uid(C): ()}, links={uid(B): [("oidc-google", "g-1")]})
    p = plan([], side, config)
    assert kinds(p) == [(A, "deactivate"), (C, "deactivate")]
    assert [(f.kind, f.subject) for f in p.findings] == [("no_external_id", uid(B))]
    strict = config.model_copy(update={"jwt_localpart_is_sub": False})
    assert kinds(plan([], side, strict)) == [(A, "deactivate")]


def test_out_of_scope_and_bad_input(config):
    cfg = config.model_copy(update={"unmanaged_subs": (B,)})
    rooms = {r.room_id: frozenset() for k, r in config.rooms.items() if k != "experiencers"}
    side = MatrixSide({uid(A): False}, {}, rooms, {r: {} for r in rooms})
    p = plan([CognitoUser("Not-A-Sub", True), CognitoUser(A, True, ("admins",)), CognitoUser(B, True)], side, cfg)
    assert kinds(p) == [(A, "join")]  # the Red Room: "admins" grants nothing, and stops nothing
    assert sorted(f.kind for f in p.findings) == ["invalid_sub", "room_missing", "unknown_group"]


def test_more_deactivations_than_the_cap_hold_the_plan_until_approved(config):
    """An emptied pool: every managed Matrix user looks deleted."""
    subs = [f"{i:08x}-1234-4abc-8def-0123456789ab" for i in range(40)]
    users = {uid(s): False for s in subs}
    p = plan([], matrix(config, users, external_ids={uid(s): (s,) for s in subs}), config)
    assert p.summary()["fixes"] == {"deactivate": 40} and p.managed == 40
    held = p.held(config)  # cap: min(20, max(1, 5% of 40 = 2)) = 2
    assert (held["removals"], held["cap"]) == (40, 2)
    assert '{"approve_removals": 40}' in held["approve"]
    assert p.held(config, approved=39) is not None and p.held(config, approved=40) is None
    few = plan([], matrix(config, users, external_ids={uid(s): (s,) for s in subs[:2]}), config)
    assert few.held(config) is None  # two of forty: within the share


def test_a_level_the_bot_cannot_change_is_a_finding_never_a_fix(config):
    """Staff set to 100 by hand (the bot's peer) with no staff group, and a role level above a
    demoted bot's: the sweep starts no run that must fail; it tells a person what to do."""
    red, staff = config.rooms["red_room"].room_id, config.rooms["staff"].room_id
    members = {red: frozenset({uid(A), uid(B)}), staff: frozenset({uid(A), uid(B)})}
    peer = plan([CognitoUser(A, True), CognitoUser(B, True, ("staff",))], matrix(
        config, {uid(A): False, uid(B): False}, members,
        {staff: {"users": {BOT: 100, uid(A): 100, uid(B): 99}, "users_default": 0}}), config)
    assert peer.fixes == ()
    assert [(f.kind, f.subject, f.room) for f in peer.findings] == [("level_beyond_the_bot", A, staff)]
    assert "only the user can lower its own level" in peer.findings[0].detail
    demoted_bot = plan([CognitoUser(B, True, ("staff",))], matrix(
        config, {uid(B): False}, members, {staff: {"users": {BOT: 50}, "users_default": 0}}), config)
    assert demoted_bot.fixes == ()
    assert [(f.kind, f.room) for f in demoted_bot.findings] == [("level_beyond_the_bot", staff)]
    assert "raise the bot above 99" in demoted_bot.findings[0].detail


def test_demotions_and_leaves_count_with_deactivations_and_a_held_plan_still_applies_what_adds(config):
    """A renamed group looks like every member losing its role: with leave_rooms_on_role_removal,
    each member of the role's room would be demoted and removed. Removals of every kind count
    against the cap; a held plan still syncs the users whose fixes only add."""
    leaving = config.model_copy(update={"leave_rooms_on_role_removal": True})
    red, staff = config.rooms["red_room"].room_id, config.rooms["staff"].room_id
    subs = [f"{i:08x}-1234-4abc-8def-0123456789ab" for i in range(40)]
    users = {uid(s): False for s in subs}
    staff_members = frozenset(uid(s) for s in subs[:3])
    members = {red: frozenset(uid(s) for s in subs[1:]), staff: staff_members}
    levels = {staff: {"users": {BOT: 100, **{u: 50 for u in staff_members}}, "users_default": 0}}
    cognito = [CognitoUser(s, True) for s in subs]  # the staff group renamed: nobody holds `staff`
    p = plan(cognito, matrix(leaving, users, members, levels), leaving)
    assert sorted(set(kinds(p))) == [(subs[0], "demote"), (subs[0], "join"), (subs[0], "leave"),
                                     (subs[1], "demote"), (subs[1], "leave"), (subs[2], "demote"), (subs[2], "leave")]
    held = p.held(leaving)  # 6 removals, cap min(20, max(1, 5% of 40 = 2)) = 2
    assert (held["removals"], held["cap"]) == (6, 2)
    assert p.to_apply(held) == () and p.to_apply(None) == tuple(sorted(subs[:3]))
    additive = plan(cognito + [CognitoUser(B, True)], matrix(leaving, {**users, uid(B): False}, members, levels),
                    leaving)
    assert additive.to_apply(additive.held(leaving)) == (B,)  # a join only: applied while the rest waits


def test_an_adopting_sweep_plans_a_tie_for_accounts_without_one(config):
    """Day one: accounts the old trigger or a JWT login made have no tie; the sweep that reads
    every account's links plans their adoption (the daily one does not read them)."""
    red = config.rooms["red_room"].room_id
    users = {uid(A): False, uid(B): False}
    members = {red: frozenset(users)}
    linked = {uid(A): (), uid(B): (B,)}  # A: the old Lambda's; B: made by this workflow
    p = plan([CognitoUser(A, True), CognitoUser(B, True)], matrix(config, users, members, external_ids=linked), config)
    assert kinds(p) == [(A, "adopt")]
    assert plan([CognitoUser(A, True)], matrix(config, users, members), config).fixes == ()  # links not read


def test_the_plan_proposes_the_groups_what_users_hold_in_matrix_implies(config):
    """Day one: Staff set to 100 by hand, an Analyst added by hand. Each is proposed the group
    that keeps what it has; a Staff member at the room's default is no staff; a user who holds
    the group already, or has no account, is proposed nothing."""
    red, staff, analysts = (config.rooms[k].room_id for k in ("red_room", "staff", "analysts"))
    C, D = "2f9e8d7c-1234-4abc-8def-0123456789ab", "3f9e8d7c-1234-4abc-8def-0123456789ab"
    users = {uid(A): False, uid(B): False, uid(C): False}
    members = {red: frozenset(users), staff: frozenset({uid(A), uid(B)}), analysts: frozenset({uid(A), uid(C)})}
    levels = {staff: {"users": {BOT: 100, uid(A): 100}, "users_default": 0}}
    p = plan([CognitoUser(A, True), CognitoUser(B, True), CognitoUser(C, True, ("analysts",)), CognitoUser(D, True)],
             matrix(config, users, members, levels), config)
    assert [(x.sub, x.group, x.detail) for x in p.proposals] == [
        (A, "staff", "in Staff at 100"), (A, "analysts", "in Analysts")]
    assert p.report()["proposed_groups"][0] == {"sub": A, "group": "staff", "detail": "in Staff at 100"}


def test_a_member_the_bot_cannot_remove_is_a_finding_never_a_leave(config):
    """With leave_rooms_on_role_removal, a member of a room no group gives is removed, unless
    Matrix would refuse the bot (a peer: at 100 in Analysts, where no role sets a level)."""
    leaving = config.model_copy(update={"leave_rooms_on_role_removal": True})
    red, analysts = config.rooms["red_room"].room_id, config.rooms["analysts"].room_id
    members = {red: frozenset({uid(A), uid(B)}), analysts: frozenset({uid(A), uid(B)})}
    levels = {analysts: {"users": {BOT: 100, uid(A): 100}, "users_default": 0}}
    p = plan([CognitoUser(A, True), CognitoUser(B, True)],
             matrix(leaving, {uid(A): False, uid(B): False}, members, levels), leaving)
    assert kinds(p) == [(B, "leave")]
    assert [(f.kind, f.subject, f.room) for f in p.findings] == [("leave_beyond_the_bot", A, analysts)]


def test_a_level_left_behind_counts_again_in_a_room_the_plan_rejoins(config):
    """A level entry outlives the membership: the run that rejoins the room then demotes, so
    the plan says so (and counts it against the cap)."""
    observers = sample_config(roles={"staff": [{"room": "staff", "power_level": 99}], "observers": [{"room": "staff"}]})
    staff = config.rooms["staff"].room_id
    red = config.rooms["red_room"].room_id
    p = plan([CognitoUser(A, True, ("observers",))], matrix(
        observers, {uid(A): False}, {red: frozenset({uid(A)})},
        {staff: {"users": {BOT: 100, uid(A): 50}, "users_default": 0}}), observers)
    assert sorted((f.kind, f.room) for f in p.fixes) == [("demote", staff), ("join", staff)]


def test_every_level_no_role_grants_is_taken_back_member_or_not(config):
    """A level outlives a membership, a deactivation and a Cognito user: each is planned away,
    whoever Cognito names. Strangers (localparts that are not subs) are not ours."""
    staff, red = config.rooms["staff"].room_id, config.rooms["red_room"].room_id
    gone, pre_set = "2f9e8d7c-1234-4abc-8def-0123456789ab", "3f9e8d7c-1234-4abc-8def-0123456789ab"
    stranger = f"@alice:{SERVER}"
    levels = {staff: {"users": {BOT: 100, uid(A): 50, uid(B): 50, uid(gone): 50, uid(pre_set): 50, stranger: 50},
                      "users_default": 0}}
    p = plan([CognitoUser(A, True), CognitoUser(B, False)],  # A left Staff and lost `staff`; B disabled
             matrix(config, {uid(A): False, uid(B): True, uid(gone): True}, {red: frozenset({uid(A)})}, levels), config)
    assert kinds(p) == sorted([(A, "demote"), (B, "demote"), (gone, "demote"), (pre_set, "demote")])


def test_a_membership_no_group_explains_is_a_finding_or_with_the_flag_a_leave(config):
    analysts, red = config.rooms["analysts"].room_id, config.rooms["red_room"].room_id
    side = matrix(config, {uid(A): False}, {analysts: frozenset({uid(A)}), red: frozenset({uid(A)})})
    p = plan([CognitoUser(A, True)], side, config)
    assert [(f.kind, f.subject, f.room) for f in p.findings] == [("member_without_group", A, analysts)]
    flagged = config.model_copy(update={"leave_rooms_on_role_removal": True})
    assert kinds(plan([CognitoUser(A, True)], side, flagged)) == [(A, "leave")]


def test_a_role_room_that_asks_more_than_its_admins_level_is_a_room_to_align(config):
    staff = config.rooms["staff"].room_id
    levels = {staff: {"users": {BOT: 100}, "events": {"m.room.power_levels": 100}, "ban": 101}}
    p = plan([], matrix(config, {}, levels=levels), config)
    assert p.report()["thresholds"] == [{"room": staff, "level": 99, "lower": {"events.m.room.power_levels": 100},
                                         "beyond": ["ban"], "why": None}]
    assert p.summary()["rooms_to_align"] == 1
    assert plan([], matrix(config, {}), config).thresholds == ()  # the spec's defaults ask at most 50
    locked = {staff: {"users": {BOT: 100}, "events": {"m.room.power_levels": 101}, "kick": 100}}  # levels need 101
    assert "may not change this room's levels" in plan([], matrix(config, {}, levels=locked), config).thresholds[0].why
    # Only an admin grant's room is aligned: a moderator's level never becomes the room's admins'.
    red = config.rooms["red_room"].room_id
    moderated = config.model_copy(update={"roles": {
        **config.roles, "moderators": (RoleGrant(room="red_room", power_level=10),)}})
    asks = {red: {"users": {BOT: 100}, "events": {"m.room.power_levels": 100}}}
    assert [t.room for t in plan([], matrix(moderated, {}, levels={**levels, **asks}), moderated).thresholds] == [staff]


def test_a_user_not_confirmed_keeps_no_roles_room_whatever_the_flag(config):
    analysts, red = config.rooms["analysts"].room_id, config.rooms["red_room"].room_id
    side = matrix(config, {uid(A): False}, {analysts: frozenset({uid(A)}), red: frozenset({uid(A)})})
    assert kinds(plan([CognitoUser(A, True, ("analysts",), status="RESET_REQUIRED")], side, config)) == [(A, "leave")]


def test_what_cognito_states_by_status_is_never_held_and_never_counted(config):
    """Throwaway sign-ups deleted without an event look like an emptied pool and hold the
    sweep; a user Cognito disabled (its event lost) is still deactivated, and it holds nothing
    by itself. The hold names whom it held back."""
    throwaways = [f"{i:08x}-1234-4abc-8def-0123456789ab" for i in range(3)]
    disabled = "ffffffff-1234-4abc-8def-0123456789ab"
    users = {uid(s): False for s in [A, disabled, *throwaways]}
    side = matrix(config, users, external_ids={uid(s): (s,) for s in throwaways})
    p = plan([CognitoUser(A, True), CognitoUser(disabled, False)], side, config)
    held = p.held(config)  # cap: min(20, max(1, 5% of 5)) = 1; the disabled user's is not counted
    assert (held["removals"], held["cap"], held["held_back"]) == (3, 1, sorted(throwaways))
    assert disabled in p.to_apply(held) and not set(throwaways) & set(p.to_apply(held))
    alone = plan([CognitoUser(A, True), CognitoUser(disabled, False)], matrix(config, users), config)
    assert alone.held(config) is None


def test_a_name_that_differs_from_cognitos_is_renamed_even_by_a_held_sweep(config):
    """The user's own UpdateUserAttributes reaches no rule: the sweep compares names. The name
    compared is the one a run would write (a posing one's neutral name); no name in Cognito
    leaves Matrix's alone unless it poses, and a deactivated account is never written."""
    C, D, E = ("2f9e8d7c-1234-4abc-8def-0123456789ab", "3f9e8d7c-1234-4abc-8def-0123456789ab",
               "4f9e8d7c-1234-4abc-8def-0123456789ab")
    red = config.rooms["red_room"].room_id
    users = {uid(s): s == D for s in (A, B, C, D, E)}
    side = matrix(config, users, {red: frozenset(uid(s) for s in (A, B, C, E))},
                  names={uid(A): "Old", uid(B): f"User {B[:8]}", uid(C): "Set in Matrix", uid(D): "Old",
                         uid(E): "Provisioner Bot"})
    p = plan([CognitoUser(A, True, display_name="Ann"), CognitoUser(B, True, display_name="provisioner-bot"),
              CognitoUser(C, True), CognitoUser(D, True, display_name="Dee"), CognitoUser(E, True)], side, config)
    assert kinds(p) == [(A, "rename"), (E, "rename")]  # E: set in Matrix, and posing
    assert p.to_apply({"removals": 99}) == (A, E)  # a rename removes nothing: applied while held

"""Not one attack at a time but the class (issue 22): a rule-based state machine (Hypothesis)
over the fakes interleaves Cognito changes, runs started late, twice or never (events lost,
doubled, reordered), a change made while a run waits for a room's lease, failures and
redrives, people changing Matrix by hand, and sweeps; and holds two invariants:
- at every write to Matrix, Cognito grants what is written, at that moment (Watched);
- after a sweep with no run in flight, Matrix holds exactly what Cognito says.
The runs follow statemachines/sync_user.asl.json itself: its Choice rules and its Next.

Its roles' levels are below the bot's, as config now requires: a level at the bot's own could
never be taken back (issue 22, finding 0), and synth refuses such a role."""

import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from chat_provisioning.domain.errors import ProvisioningError
from chat_provisioning.domain.models import Run, StartRequest
from chat_provisioning.domain.policy import desired_levels, desired_memberships, split_groups, standing, user_id_for
from chat_provisioning.handlers import steps
from tests.fakes import FakeChatServer, FakeRoomLocks, runtime_of, sample_config

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachines" / "sync_user.asl.json").read_text())
CONFIG = sample_config(
    roles={"staff": [{"room": "staff", "power_level": 50}], "analysts": [{"room": "analysts"}],
           "experiencers": [{"room": "experiencers", "power_level": 20}]},
    leave_rooms_on_role_removal=True, sweep_max_removals=1000, sweep_max_removal_share=1.0)
SUBS = [f"0f9e8d7c-1234-4abc-8def-00000000000{i}" for i in range(3)]
GROUPS = ("staff", "analysts", "experiencers")
ROOMS = tuple(CONFIG.rooms)
CAUSES = ("signup", "AdminAddUserToGroup", "AdminRemoveUserFromGroup", "AdminDisableUser", "AdminEnableUser",
          "AdminDeleteUser", "AdminResetUserPassword", "sweep", "event")
CHANGES = ("add", "remove", "disable", "enable", "reset", "confirm", "delete")
subs, groups, rooms = st.sampled_from(SUBS), st.sampled_from(GROUPS), st.sampled_from(ROOMS)


def step_of(name: str) -> Any:
    """The step a Task state runs: the one its name names (`"step.$": "$$.State.Name"`)."""
    return steps.SYNC_USER_STEPS[name].step


def chosen(state: dict[str, Any], data: dict[str, Any]) -> str:
    def holds(rule: dict[str, Any]) -> bool:
        if "Or" in rule:
            return any(holds(r) for r in rule["Or"])
        return bool(data[rule["Variable"].removeprefix("$.")] == rule["StringEquals"])
    return next((c["Next"] for c in state["Choices"] if holds(c)), state["Default"])


class Watched(FakeChatServer):
    """Synapse, where every grant is checked against Cognito at the moment it is written."""

    def __init__(self, machine: "GrantsFollowCognito") -> None:
        super().__init__([r.room_id for r in CONFIG.rooms.values()], CONFIG.bot_user_id)
        self.machine = machine

    def upsert_user(self, user_id: str, displayname: str | None, external_id: str, auth_provider: str) -> Any:
        if user_id not in self.users:
            self.machine.granted(user_id, "an account")
        return super().upsert_user(user_id, displayname, external_id, auth_provider)

    def reactivate(self, user_id: str) -> None:
        self.machine.granted(user_id, "a reactivation")
        super().reactivate(user_id)

    def join(self, room_id: str, user_id: str) -> bool:
        earned = {m.room_id for m in desired_memberships(self.machine.granted(user_id, "a join"), CONFIG)}
        assert room_id in earned, f"joined {user_id} to {room_id}, which Cognito does not give it now"
        return super().join(room_id, user_id)

    def set_power_levels(self, room_id: str, levels: dict[str, int | None], lease: Any = None) -> Any:
        room = next(k for k, r in CONFIG.rooms.items() if r.room_id == room_id)
        for user_id, level in levels.items():
            if level is not None and level > int(self.levels[room_id]["users"].get(user_id, 0)):
                earned = desired_levels(self.machine.granted(user_id, "a level"), CONFIG)[room] or 0
                assert level <= earned, f"{user_id} set to {level} in {room}; Cognito gives {earned} now"
        return super().set_power_levels(room_id, levels, lease)


class LocksWithAWait(FakeRoomLocks):
    """A lease taken after a wait, during which Cognito may change (change_while_a_run_waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.during_wait: list[Any] = []

    def hold(self, room_id: str) -> Any:
        while self.during_wait:
            self.during_wait.pop(0)()
        return super().hold(room_id)


class GrantsFollowCognito(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rt = runtime_of(CONFIG, synapse=Watched(self), locks=LocksWithAWait())
        self.runs: list[dict[str, Any]] = []
        self.executions = itertools.count()
        self.deleted: set[str] = set()  # a sub Cognito deleted never comes back

    # --- Cognito, the only authority -----------------------------------------------------------
    def granted(self, user_id: str, what: str) -> tuple[str, ...]:
        """The groups Cognito gives `user_id` now; fails the test if it gives it nothing."""
        sub = next(s for s in SUBS if user_id_for(s, CONFIG) == user_id)
        user = self.rt.directory.users.get(sub)
        assert standing(user) == "confirmed", f"{what} for {sub}, whom Cognito has {standing(user)} now"
        return split_groups(user.groups, CONFIG)[0] if user else ()

    def change(self, sub: str, change: str, group: str) -> None:
        """One Cognito change; "confirm" of a sub not in the pool is its sign-up."""
        users = self.rt.directory.users
        user = users.get(sub)
        if user is None:
            if change == "confirm" and sub not in self.deleted:  # a new user signs up
                self.rt.directory.add(sub)
            return
        if change == "delete":
            del users[sub]
            self.deleted.add(sub)
            return
        self.rt.directory.add(sub, groups={"add": set(user.groups) | {group}, "remove": set(user.groups) - {group}}
                              .get(change, set(user.groups)),
                              enabled={"disable": False, "enable": True}.get(change, user.enabled),
                              status={"reset": "RESET_REQUIRED", "confirm": "CONFIRMED"}.get(change, user.status))

    @rule(sub=subs, change=st.sampled_from(CHANGES), group=groups)
    def cognito_changes(self, sub: str, change: str, group: str) -> None:
        self.change(sub, change, group)

    @rule(sub=subs, change=st.sampled_from(CHANGES), group=groups)
    def cognito_changes_while_a_run_waits_for_a_lease(self, sub: str, change: str, group: str) -> None:
        self.rt.locks.during_wait.append(lambda: self.change(sub, change, group))

    # --- runs: started late, twice or never; advanced in any order; failed and redriven -------
    @rule(sub=subs, cause=st.sampled_from(CAUSES))
    def a_run_starts(self, sub: str, cause: str) -> None:
        self.runs.append({"at": ASL["StartAt"], "data": StartRequest(sub=sub, cause=cause),
                          "execution": f"run-{next(self.executions)}", "redrive": 0, "failed": False})

    @precondition(lambda self: self.runs)
    @rule(which=st.integers(min_value=0))
    def a_run_takes_a_step(self, which: int) -> None:
        run = self.runs[which % len(self.runs)]
        if not run["failed"]:
            self.advance(run)

    @precondition(lambda self: self.runs)
    @rule(which=st.integers(min_value=0))
    def a_step_fails_and_is_redriven_later(self, which: int) -> None:
        run = self.runs[which % len(self.runs)]
        run["failed"], run["redrive"] = not run["failed"], run["redrive"] + run["failed"]

    def advance(self, run: dict[str, Any]) -> None:
        state = ASL["States"][run["at"]]
        if state["Type"] == "Choice":
            run["at"] = chosen(state, run["data"].model_dump())
            return
        try:
            run["data"] = step_of(run["at"])(run["data"], self.rt,
                                             Run(execution=run["execution"], redrive=run["redrive"]))
        except ProvisioningError:
            run["failed"] = True  # FAILED at this step: a redrive runs it again
            return
        if state.get("End"):
            self.runs.remove(run)
        else:
            run["at"] = state["Next"]

    # --- people in Matrix: invites and leaves nobody granted, levels set by hand ------------------
    @rule(sub=subs, room=rooms, joins=st.booleans())
    def a_membership_changes_by_hand(self, sub: str, room: str, joins: bool) -> None:
        user_id, room_id = user_id_for(sub, CONFIG), CONFIG.rooms[room].room_id
        if joins and not (self.rt.synapse.users.get(user_id) or {"deactivated": True})["deactivated"]:
            self.rt.synapse.members[room_id].add(user_id)
        elif not joins:
            self.rt.synapse.members[room_id].discard(user_id)

    @rule(sub=subs, room=rooms, level=st.sampled_from([10, 50, 90]))
    def a_level_is_set_by_hand(self, sub: str, room: str, level: int) -> None:
        self.rt.synapse.levels[CONFIG.rooms[room].room_id]["users"][user_id_for(sub, CONFIG)] = level

    # --- the sweep, with nothing else in flight: Matrix then holds what Cognito says -------------
    @precondition(lambda self: not self.runs)
    @rule()
    def a_sweep_runs(self) -> None:
        while self.rt.locks.during_wait:  # a change that waited for a lease is made before the sweep
            self.rt.locks.during_wait.pop(0)()
        # Approved: the removal cap is its own protection (an emptied pool), not this one.
        result = steps.plan_sweep({"execution": f"sweep-{next(self.executions)}",
                                   "request": {"approve_removals": 1000}}, FakeContext(), rt=self.rt)
        for request in self.rt.plans.documents[result["requests_key"]] if result["apply"] else ():
            self.a_run_starts(request["sub"], "sweep")
            while self.runs and not self.runs[-1]["failed"]:
                self.advance(self.runs[-1])
        self.runs.clear()
        for sub in SUBS:
            self.holds_what_cognito_says(sub)

    def holds_what_cognito_says(self, sub: str) -> None:
        user = self.rt.directory.users.get(sub)
        status, user_id, synapse = standing(user), user_id_for(sub, CONFIG), self.rt.synapse
        account = synapse.users.get(user_id)
        active = account is not None and not account["deactivated"]
        assert active or status != "confirmed" or account is not None, f"{sub} is confirmed and has no account"
        assert not active or status not in ("disabled", "absent"), f"{sub} is {status} and active in Matrix"
        groups = split_groups(user.groups, CONFIG)[0] if user and status == "confirmed" and active else ()
        held = {room for room, r in CONFIG.rooms.items() if user_id in synapse.members[r.room_id]}
        if not active:
            assert held == set(), f"{sub}, whose account is not active, is in {held}"
        elif status == "confirmed":
            wanted = {m.room for m in desired_memberships(groups, CONFIG)}
            assert held == wanted, f"{sub} is in {held}; Cognito gives {wanted}"
        else:  # an account whose user is not confirmed keeps no role's room
            assert held <= set(CONFIG.default_rooms), f"{sub} ({status}) is in {held}"
        if status == "confirmed" and not active:
            return  # deactivated in Matrix, enabled in Cognito: a sweep never reactivates, nor acts (a finding)
        levels = {room: synapse.levels[CONFIG.rooms[room].room_id]["users"].get(user_id)
                  for room in desired_levels((), CONFIG)}
        assert levels == desired_levels(groups, CONFIG), f"{sub} ({status}) at {levels}; Cognito gives {groups}"


class FakeContext:
    function_name, memory_limit_in_mb, aws_request_id = "test", 128, "test-request"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


GrantsFollowCognito.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_no_grant_outlives_cognitos_word = GrantsFollowCognito.TestCase

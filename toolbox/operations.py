"""What an operator does against a deployment: one user's story (`user status`) and its fix
(`user sync`), failed executions redriven, the sweep. Each returns its answer (JSON-ready) and
an exit code; cli.py prints them. Every read is the deployment's own: Cognito, the audit table,
Step Functions, the plans bucket, and Synapse through the stack's read-only InspectUser."""

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import get_args

from botocore.exceptions import BotoCoreError, ClientError

from chat_provisioning.adapters.audit_table import DynamoAuditStore
from chat_provisioning.adapters.cognito import CognitoDirectory
from chat_provisioning.adapters.step_functions import start_once
from chat_provisioning.domain.errors import InvalidInput
from chat_provisioning.domain.executions import FAILED_STATUSES, newest_state_entered
from chat_provisioning.domain.policy import standing
from chat_provisioning.domain.subs import normalise_sub
from chat_provisioning.domain.sweep_plan import FixKind

from .deployment import Deployment, ToolError

# Exit codes, for scripts (README, "Operating").
IN_SYNC, ERROR, DRIFT, FAILED, NOT_FOUND = 0, 1, 2, 3, 4
Progress = Callable[[str], None]
POLL_SECONDS = 1.0


def find_sub(d: Deployment, who: str) -> str:
    """The sub of the user `who` names: a sub, an email address or a username. Looked up in
    Cognito (ListUsers), the only authority; nothing else is echoed back."""
    try:
        return normalise_sub(who)
    except InvalidInput:
        pass
    attribute = "email" if "@" in who else "username"
    if not who or len(who) > 240 or any(c in who for c in '"\\'):
        raise ToolError(f"not a sub, email address or username: {who[:40]!r}")
    users = d.client("cognito-idp").list_users(UserPoolId=d.outputs["UserPoolId"],
                                                Filter=f'{attribute} = "{who}"', Limit=2)["Users"]
    if not users:
        raise ToolError(f"no user in the pool has this {attribute}", NOT_FOUND)
    if len(users) > 1:
        raise ToolError(f"more than one user has this {attribute}: name the user by sub")
    return {a["Name"]: a["Value"] for a in users[0]["Attributes"]}["sub"]


def inspect(d: Deployment, sub: str) -> dict:
    """Cognito, Matrix and the drift, from the stack's InspectUser (in the VPC, with the token)."""
    r = d.client("lambda").invoke(FunctionName=d.outputs["InspectUserFunctionName"],
                                  Payload=json.dumps({"sub": sub}).encode())
    answer = json.loads(r["Payload"].read() or "null")
    if r.get("FunctionError"):
        raise ToolError(f"InspectUser failed: {answer.get('errorType')}: {str(answer.get('errorMessage'))[:300]}")
    return answer


def execution(d: Deployment, arn: str, events: list[dict] | None = None) -> dict:
    """One execution as an operator reads it: status and dates, and where and why it failed
    (from its history: `events`, when the caller has read it already)."""
    sfn = d.client("stepfunctions")
    e = sfn.describe_execution(executionArn=arn)
    out = {"name": e["name"], "status": e["status"], "start": _time(e["startDate"]),
           "stop": _time(e.get("stopDate")), "redrive_count": e.get("redriveCount", 0),
           "redrivable": e.get("redriveStatus"), "execution_arn": arn}
    if e["status"] in FAILED_STATUSES:
        out |= {"failed_state": failed_state(events if events is not None else history(sfn, arn)),
                "error": e.get("error"), "cause": (e.get("cause") or "")[:300]}
    return out


def failed_state(events: list[dict]) -> str | None:
    """The last state an execution's history entered: where a redrive resumes."""
    entered = newest_state_entered(events)
    return entered["name"] if entered else None


def user_executions(d: Deployment, sub: str, since: datetime) -> list[dict]:
    """The user's SyncUser executions started since `since`, newest first. Every start names
    the sub: signup-<sub>, sync-<sub>-<event>, sweep-<tag>-<sub>, operator-<sub>-<time>."""
    return [execution(d, e["executionArn"])
            for e in executions_since(d, d.outputs["SyncUserStateMachineArn"], since) if sub in e["name"]]


def user_status(d: Deployment, who: str, since: datetime) -> tuple[dict, int]:
    sub = find_sub(d, who)
    runs = user_executions(d, sub, since)
    try:
        seen = inspect(d, sub)
    except ToolError as unread:  # Synapse down, say: what explains it is still there to read
        seen = {"sub": sub, "cognito": cognito_alone(d, sub), "matrix": {"unread": str(unread)}, "drift": None}
        verdict, code = judge_without_matrix(seen, runs, d.invoked_as)
    else:
        verdict, code = judge(seen, runs, d.invoked_as)
    rooms = room_names(seen) if seen["drift"] is not None else {}
    trail = [{"time": i["time"], "execution": i["execution"].rsplit(":", 1)[-1], "event": i.get("event"),
              "step": i.get("step"), "action": i["action"], "room": rooms.get(i.get("room"), i.get("room")),
              "outcome": i["outcome"], **({"error": i["error"]} if i.get("error") else {})}
             for i in DynamoAuditStore(d.outputs["AuditTableName"], lambda: d.client("dynamodb")).trail(sub)]
    return {**seen, "audit": trail, "executions": runs, "verdict": verdict}, code


def judge(seen: dict, runs: list[dict], invoked_as: str) -> tuple[str, int]:
    """One line and an exit code: in sync, drift (what, and whether a sync fixes it), or failed
    at a step (which, why, what to do). A failed last run comes first: it is why the drift is
    still there. Findings are what a sync cannot fix (a sweep or a run never reactivates, a
    group no role knows, a configured room Synapse does not have): a person must look."""
    fixes, findings = seen["drift"]["fixes"], seen["drift"]["findings"]
    if seen["cognito"]["standing"] == "absent" and not seen["matrix"]["exists"]:
        return "not found: neither Cognito nor Matrix has this user", NOT_FOUND
    last = runs[0] if runs else None
    if last and last["status"] in FAILED_STATUSES and (fixes or findings):
        return failed_run(last, invoked_as), FAILED
    rooms = room_names(seen)
    parts = []
    if fixes:
        what = ", ".join(f"{f['kind']} {rooms.get(f['room_id'], f['room_id'])}" if f["room_id"] else f["kind"]
                         for f in fixes)
        fix = f"{last['name']} is running" if last and last["status"] == "RUNNING" \
            else f"fix: {invoked_as} user sync {seen['sub']}"
        parts.append(f"drift: {what}; {fix}")
    if findings:
        parts.append(f"needs a person: {', '.join(f['kind'] for f in findings)} (see drift.findings)")
    if parts:
        return "; ".join(parts), DRIFT
    running = [r["name"] for r in runs if r["status"] == "RUNNING"]
    return "in sync" + (f" ({', '.join(running)} running)" if running else ""), IN_SYNC


def failed_run(run: dict, invoked_as: str) -> str:
    """Where and why a run failed, and the command that resumes it there."""
    return (f"failed at {run['failed_state']}: {run['error']} ({run['name']}); once the cause is fixed: "
            f"{invoked_as} executions redrive {run['execution_arn']}")


def cognito_alone(d: Deployment, sub: str) -> dict:
    """What the operator's own role reads of the user in Cognito (ListUsers): its standing, not
    its groups, which InspectUser reads."""
    found = CognitoDirectory(d.outputs["UserPoolId"], lambda: d.client("cognito-idp")).listed(sub)
    if found is None:
        return {"standing": "absent"}
    user = found[0]
    return {"standing": standing(user), "status": user.status, "enabled": user.enabled,
            "groups": "unread: InspectUser reads them"}


def judge_without_matrix(seen: dict, runs: list[dict], invoked_as: str) -> tuple[str, int]:
    """The verdict when Matrix could not be read: it says so, and what it can say without it. A
    failed last run is still one (3); otherwise a person must look (2). Exit 1 is left for a
    status that could read nothing."""
    unread = f"incomplete: Matrix unread ({seen['matrix']['unread']})"
    last = runs[0] if runs else None
    if last and last["status"] in FAILED_STATUSES:
        return f"{unread}; the last run {failed_run(last, invoked_as)}", FAILED
    return f"{unread}; Cognito: {seen['cognito']['standing']}; see the audit trail and the executions", DRIFT


def room_names(seen: dict) -> dict[str, str]:
    """Room ID -> the room's name, for what InspectUser answered."""
    return {r["room_id"]: r["name"] for r in seen["matrix"]["rooms"]}


def user_sync(d: Deployment, who: str, progress: Progress, wait: bool = True) -> tuple[dict, int]:
    """Start the user's workflow now, as an operator (cause "manual": it never reactivates)."""
    sub = find_sub(d, who)
    name = f"operator-{sub}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    arn = start_once(d.client("stepfunctions"), d.outputs["SyncUserStateMachineArn"], name,
                     json.dumps({"sub": sub, "cause": "manual"}))
    if not wait:
        return {"sub": sub, "execution_arn": arn, "status": "RUNNING"}, IN_SYNC
    ended = follow(d, arn, progress)
    if ended["status"] != "SUCCEEDED":
        return {"sub": sub, **ended}, FAILED
    state = json.loads(d.client("stepfunctions").describe_execution(executionArn=arn).get("output") or "{}")
    if state.get("cognito") == "absent" and {"step": "DeactivateUser", "action": "deactivate_user",
                                             "outcome": "skipped:no_matrix_user"} in state.get("actions", []):
        return {"sub": sub, **ended, "error": "no such user: neither Cognito nor Matrix has this sub"}, NOT_FOUND
    return {"sub": sub, **ended}, IN_SYNC


def history(sfn, arn: str) -> list[dict]:
    """The execution's whole history, in Step Functions' order (its event ids)."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return sorted((e for page in pages for e in page["events"]), key=lambda e: e["id"])


def outcomes(exited: dict) -> str:
    """What a SyncUser step did, from the state it hands on (its actions): ": created",
    ": joined ×2", ": skipped:no_matrix_user"; nothing for a state that records none."""
    try:
        actions = json.loads(exited.get("output") or "{}").get("actions")
    except (ValueError, AttributeError):  # not a step's state
        return ""
    done = Counter(str(a.get("outcome")) for a in (actions if isinstance(actions, list) else [])
                   if isinstance(a, dict) and a.get("step") == exited["name"])
    return (": " + ", ".join(f"{o} ×{n}" if n > 1 else o for o, n in done.items())) if done else ""


def follow(d: Deployment, arn: str, progress: Progress, told: int = 0, timeout: float = 3600) -> dict:
    """Wait for the execution, telling `progress` each state as it ends (after the first `told`
    events of its history); then the execution."""
    sfn, deadline = d.client("stepfunctions"), time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        events = history(sfn, arn)
        for e in events[told:]:
            if "stateExitedEventDetails" in e:
                exited = e["stateExitedEventDetails"]
                progress(f"{_time(e['timestamp'])}  {exited['name']} done{outcomes(exited)}")
            elif e["type"] == "ExecutionRedriven":
                progress(f"{_time(e['timestamp'])}  redriven")
        told = len(events)
        if status != "RUNNING":
            return execution(d, arn, events)
        if time.monotonic() > deadline:
            raise ToolError(f"{arn} still RUNNING after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def redrive(d: Deployment, arns: list[str], since: datetime | None, dry_run: bool, progress: Progress,
            wait: bool = True) -> tuple[dict, int]:
    """Redrive the executions named, or every FAILED, TIMED_OUT or ABORTED one of the stack's
    state machines that stopped since `since`, through Step Functions' RedriveExecution: each
    resumes at the state it failed in. All are redriven first, then followed. `dry_run`: list
    them, where each would resume, and whether Step Functions says it can be redriven."""
    sfn = d.client("stepfunctions")
    if not arns:
        arns = [e["executionArn"]
                for machine in (d.outputs["SyncUserStateMachineArn"], d.outputs["SweepUsersStateMachineArn"])
                for status in FAILED_STATUSES
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter=status)
                for e in page["executions"] if e.get("stopDate", e["startDate"]) >= since]
    results, code, redriven = [], IN_SYNC, {}
    for arn in arns:
        result = {"execution_arn": arn}
        try:
            events = history(sfn, arn)
            before = execution(d, arn, events)
            result |= {"name": before["name"], "status": before["status"], "resumes_at": before.get("failed_state"),
                       "error": before.get("error"), "redrivable": before["redrivable"]}
            if not dry_run:
                sfn.redrive_execution(executionArn=arn)
                progress(f"{before['name']}: redriven at {before.get('failed_state')}")
                redriven[arn] = len(events)  # follow tells only what comes after
        except (ClientError, BotoCoreError) as e:  # this one refused (ExecutionNotRedrivable...); the rest go on
            result["refused"], code = str(e), ERROR
        results.append(result)
    for result in results:
        if result["execution_arn"] in redriven:
            arn = result["execution_arn"]
            after = follow(d, arn, progress, redriven[arn]) if wait else execution(d, arn)
            result |= {"status": after["status"], "redrive_count": after["redrive_count"],
                       "failed_state": after.get("failed_state"), "error": after.get("error")}
            if after["status"] in FAILED_STATUSES and code == IN_SYNC:
                code = FAILED
    return {"dry_run": dry_run, "executions": results}, code


def sweep_request(dry_run: bool = False, approve_removals: int | None = None, adopt: bool = False,
                  align_rooms: bool = False) -> dict:
    """SweepUsers' input (models.SweepRequest), with only what differs from the schedule's {}."""
    return ({"dry_run": True} if dry_run else {}) | ({"adopt": True} if adopt else {}) | (
        {"approve_removals": approve_removals} if approve_removals is not None else {}) | (
        {"align_rooms": True} if align_rooms else {})


def sweep(d: Deployment, dry_run: bool, approve_removals: int | None, adopt: bool,
          progress: Progress, align_rooms: bool = False) -> tuple[dict, int]:
    """Start SweepUsers, follow it, and report its plan (from the plans bucket) and each user's
    workflow it ran. Exit 0: nothing to fix, or all fixed; 2: drift left (a dry run's or a held
    plan's fixes) or findings; 3: the sweep or a user's workflow failed."""
    sfn = d.client("stepfunctions")
    arn = start_once(sfn, d.outputs["SweepUsersStateMachineArn"],
                     f"operator-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
                     json.dumps(sweep_request(dry_run, approve_removals, adopt, align_rooms)))
    return sweep_report(d, arn, progress)


def import_groups(d: Deployment, reviewed: list[dict] | None, progress: Progress) -> tuple[dict, int]:
    """The Cognito group memberships today's Matrix roles imply, as a dry-run sweep proposes
    them now (sweep_plan.implied_groups). With `reviewed` (the proposals a person read, from an
    earlier dry run's file), each of those that is still proposed now is added in Cognito
    (AdminAddUserToGroup: the stack's GroupImportPolicy) to a user still enabled and confirmed
    there; one proposed now that nobody reviewed is listed, never added. CloudTrail records
    each call, and the run it starts records the change in the audit trail. Exit 0: nothing to
    propose, or all reviewed added; 2: proposals left for review; 1: a reviewed one not added."""
    report, code = sweep(d, dry_run=True, approve_removals=None, adopt=False, progress=progress)
    if report["status"] != "SUCCEEDED":
        return report, code
    proposed = sorted(report["proposed_groups"], key=lambda p: (p["sub"], p["group"]))
    answer = {"proposed": proposed, "sweep": report["execution_arn"]}
    if reviewed is None:
        return answer, DRIFT if proposed else IN_SYNC
    now = {(p["sub"], p["group"]) for p in proposed}
    seen = {(p["sub"], p["group"]) for p in reviewed}
    stale = [{**p, "error": "no longer implied by Matrix: plan again and review"}
             for p in reviewed if (p["sub"], p["group"]) not in now]
    added, refused = add_to_groups(d.client("cognito-idp"), d.outputs["UserPoolId"],
                                   [p for p in proposed if (p["sub"], p["group"]) in seen], progress)
    unreviewed = [p for p in proposed if (p["sub"], p["group"]) not in seen]
    code = ERROR if refused or stale else DRIFT if unreviewed else IN_SYNC
    return {**answer, "added": added, "refused": stale + refused, "unreviewed": unreviewed}, code


def add_to_groups(idp, pool: str, proposed: list[dict], progress: Progress) -> tuple[list[dict], list[dict]]:
    """Each proposal added in Cognito, if its user is still enabled and confirmed there (a
    person reviewed the plan since Cognito was read): (added, refused with why)."""
    added, refused, directory = [], [], CognitoDirectory(pool, lambda: idp)
    for proposal in proposed:
        found = directory.listed(normalise_sub(proposal["sub"]))
        if found is None or standing(found[0]) != "confirmed":
            refused.append({**proposal, "error": "no longer an enabled, confirmed user in Cognito"})
            continue
        username = found[1]
        try:
            idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=proposal["group"])
        except ClientError as e:
            refused.append({**proposal, "error": e.response["Error"]["Code"]})
            continue
        added.append(proposal)
        progress(f"{proposal['sub']} added to {proposal['group']}")
    return added, refused


def sweep_report(d: Deployment, arn: str, progress: Progress) -> tuple[dict, int]:
    """The sweep `arn`, once it has ended, and what it planned and ran."""
    sfn = d.client("stepfunctions")
    ended = follow(d, arn, progress)
    if ended["status"] != "SUCCEEDED":
        return ended, FAILED
    described = sfn.describe_execution(executionArn=arn)
    output, request = json.loads(described["output"]), json.loads(described.get("input") or "{}")
    # An approval plans again: with the same options, or it would plan something else.
    as_planned = "".join(f" --{option.replace('_', '-')}" for option in ("adopt", "align_rooms") if request.get(option))
    plan = json.loads(d.client("s3").get_object(Bucket=output["bucket"], Key=output["plan_key"])["Body"].read())
    prefix = f"sweep-{output['tag']}-"  # its users' workflows (the ASL's ApplyPlan names them)
    workflows = {e["name"].removeprefix(prefix): execution(d, e["executionArn"])
                 for e in executions_since(d, d.outputs["SyncUserStateMachineArn"], _parse(ended["start"]))
                 if e["name"].startswith(prefix)}
    applied = set(plan["to_apply"]) if output["apply"] else set()
    unapplied = [f for f in plan["fixes"] if f["sub"] not in applied]
    code = FAILED if any(w["status"] != "SUCCEEDED" for w in workflows.values()) \
        else DRIFT if unapplied or plan["findings"] or plan.get("thresholds") else IN_SYNC
    return {**ended, **{k: output[k] for k in ("outcome", "bucket", "plan_key", "requests_key", "tag")},
            "summary": plan["summary"], "held": plan["held"] and {  # the command, not the state machine's input
                **plan["held"], "approve": f"check the plan, then: {d.invoked_as} sweep --approve-removals "
                                          f"{plan['held']['removals']}{as_planned}"},
            "fixes": plan["fixes"], "unapplied": unapplied,
            "findings": plan["findings"], "proposed_groups": plan["proposed_groups"],
            # an older stack's plan has neither
            "thresholds": plan.get("thresholds", []), "aligned": plan.get("aligned", {}), "workflows": workflows}, code


def grouped(report: dict) -> dict:
    """A sweep's plan for a person to review and diff: each kind of fix (sweep_plan.FixKind)
    with its users, sorted, then the findings; whether it is held, and what it leaves undone."""
    fixes = {kind: sorted(({k: v for k, v in f.items() if k != "kind" and v is not None} for f in report["fixes"]
                           if f["kind"] == kind), key=lambda f: (f["sub"], f.get("room") or ""))
             for kind in get_args(FixKind)}
    return {"summary": report["summary"], "held": report["held"], **fixes,
            "findings": sorted(report["findings"], key=lambda f: (f["kind"], f["subject"], f.get("room") or "")),
            "proposed_groups": sorted(report["proposed_groups"], key=lambda p: (p["sub"], p["group"])),
            "thresholds": sorted(report["thresholds"], key=lambda t: t["room"]),
            "unapplied": len(report["unapplied"])}


def executions_since(d: Deployment, machine: str, since: datetime):
    """The machine's executions started since `since` (ListExecutions lists newest first)."""
    for page in d.client("stepfunctions").get_paginator("list_executions").paginate(stateMachineArn=machine):
        for e in page["executions"]:
            if e["startDate"] < since:
                return
            yield e


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _time(value) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

"""`make negative-controls`: each protection against the attacks, removed in turn, must make a
test fail: the attack (or the check that pins the protection) then succeeds. A protection no
test notices is not proven. Each mutation is made in a copy of the checkout (the original is
never touched); prints one line per protection and exits 1 if any mutation went unnoticed.

Not in `make test`: each run starts its own stack (13 to 18 min in all here)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = "tests/attacks/test_attacks.py"
OPERATOR = "tests/unit/test_operator.py"
TOOLBOX = "tests/workflow/test_toolbox.py"
ADOPTION = "tests/workflow/test_adoption.py"

# (protection, file, the code that makes it, the code without it, the tests that must fail)
MUTATIONS = [
    ("a start names a sub and a cause only", "lambdas/chat_provisioning/models.py",
     'class StartRequest(Sub):\n', 'class StartRequest(Sub):\n    model_config = ConfigDict(frozen=True, extra="ignore")\n',
     [f"{ATTACKS}::test_a_start_names_a_user_and_a_cause_and_nothing_else"]),
    ("a custom event's detail is a sub only", "lambdas/chat_provisioning/triggers.py",
     'parse(Sub, bridge.detail).sub', 'normalise_sub(bridge.detail.get("sub"))',
     [f"{ATTACKS}::test_events_cannot_grant_reactivate_or_reach_the_workflow_with_more_than_a_sub"]),
    ("only this workflow's deactivation is undone", "lambdas/chat_provisioning/steps.py",
     ' or not rt.audit.deactivated_by_workflow(state.sub, run.execution)', '',
     [f"{ATTACKS}::test_a_start_names_a_user_and_a_cause_and_nothing_else"]),
    ("ApplyPlan builds each input from a sub", "statemachines/sweep_users.asl.json",
     '"Input": {\n                "sub.$": "$.sub",\n                "cause": "sweep"\n              }',
     '"Input.$": "$$.Map.Item.Value"',
     [f"{ATTACKS}::test_a_swapped_plan_names_users_and_nothing_more"]),
    ("display names are cut to what Synapse takes", "lambdas/chat_provisioning/policy.py",
     "return name[:MAX_DISPLAY_NAME] or None", "return name or None",
     [f"{ATTACKS}::test_no_name_or_unknown_group_stops_a_deactivation"]),
    ("status decides first", "lambdas/chat_provisioning/policy.py",
     '    if not user.enabled:\n        return "disabled"\n', '',
     [f"{ATTACKS}::test_no_name_or_unknown_group_stops_a_deactivation"]),
    ("only confirmed users get an account", "lambdas/chat_provisioning/policy.py",
     'CONFIRMED = ("CONFIRMED", "EXTERNAL_PROVIDER")', 'CONFIRMED = ("CONFIRMED", "EXTERNAL_PROVIDER", "UNCONFIRMED")',
     [f"{ATTACKS}::test_unconfirmed_sign_ups_get_no_account_on_any_path"]),
    ("a user not confirmed keeps no grant", "statemachines/sync_user.asl.json",
     '"StringEquals": "unconfirmed",\n          "Next": "AssignRoles"', '"StringEquals": "unconfirmed",\n          "Next": "RecordAudit"',
     [f"{ATTACKS}::test_a_user_no_longer_confirmed_keeps_no_grant"]),
    ("a sweep grants nothing to a user not confirmed", "lambdas/chat_provisioning/sweep_plan.py",
     'known = split_groups(user.groups, config)[0] if status == "confirmed" else ()',
     "known = split_groups(user.groups, config)[0]",
     [f"{ATTACKS}::test_a_user_no_longer_confirmed_keeps_no_grant"]),
    ("ProvisionUser writes nothing Cognito no longer grants", "lambdas/chat_provisioning/steps.py",
     'if now is None or status != "confirmed":', "if now is None:",
     [f"{ATTACKS}::test_a_redriven_enable_reactivates_nobody_cognito_disabled_since",
      f"{ATTACKS}::test_a_redrive_writes_on_cognitos_word_at_the_write"]),
    ("no level is granted on groups carried from an earlier state", "lambdas/chat_provisioning/steps.py",
     "level = desired_levels(cognito_now()[1], rt.config)[room]", "level = desired_levels(state.groups, rt.config)[room]",
     [f"{ATTACKS}::test_a_delayed_run_grants_no_level_a_later_change_took_away"]),
    ("a refused Cognito call starts nothing", "stacks/wiring.py",
     '"errorCode": [{"exists": False}],', "",
     [f"{ATTACKS}::test_a_refused_cognito_call_starts_nothing"]),
    ("a sweep never reactivates", "lambdas/chat_provisioning/sweep_plan.py",
     'if status == "confirmed" and deactivated:', 'if False:',
     [f"{ATTACKS}::test_a_sweep_never_reactivates"]),
    ("a sweep holds above the removal cap", "lambdas/chat_provisioning/sweep_plan.py",
     "if removals <= cap or", "if True or",
     [f"{ATTACKS}::test_an_emptied_pool_holds_the_sweep_and_it_never_erases"]),
    ("a sweep never erases", "lambdas/chat_provisioning/steps.py",
     ' and state.cause == "AdminDeleteUser"', '',
     [f"{ATTACKS}::test_an_emptied_pool_holds_the_sweep_and_it_never_erases"]),
    ("the sign-up's username resolves to its sub", "lambdas/chat_provisioning/signup.py",
     'if directory.sub_of_username(user_name) != sub:', 'if False:',
     [f"{ATTACKS}::test_the_sign_up_trigger_and_its_retry_queue_check_pool_and_username"]),
    ("the sign-up is of our pool", "lambdas/chat_provisioning/signup.py",
     "if user_pool_id != pool:", "if False:",
     [f"{ATTACKS}::test_the_sign_up_trigger_and_its_retry_queue_check_pool_and_username"]),
    ("a retry job carries nothing more", "lambdas/chat_provisioning/models.py",
     "class RetryJob(Frozen):\n", 'class RetryJob(Frozen):\n    model_config = ConfigDict(frozen=True, extra="ignore")\n',
     [f"{ATTACKS}::test_the_sign_up_trigger_and_its_retry_queue_check_pool_and_username"]),
    ("a CloudTrail record names its user by its sub", "lambdas/chat_provisioning/triggers.py",
     "if recorded is not None and recorded not in MASKED:", "if False:",
     ["tests/workflow/test_sync.py::test_disable_enable_delete"]),
    ("a Synapse request is not started without time to finish", "lambdas/chat_provisioning/synapse.py",
     "if left < MIN_REQUEST_SECONDS:", "if False:",
     ["tests/unit/test_events_and_errors.py::test_a_step_out_of_time_stops_with_a_retried_error_before_lambda_ends_it"]),
    ("a lease is awaited at most half the time left", "lambdas/chat_provisioning/locks.py",
     "waiting = min(self.wait_seconds, self.deadline.left() / 2)", "waiting = self.wait_seconds",
     ["tests/unit/test_locks.py::test_the_lease_wait_leaves_half_the_time_left_to_write"]),
    ("the sign-up trigger starts only with time left to queue", "lambdas/chat_provisioning/signup.py",
     "if time_left() < START_NEEDS_SECONDS:", "if False:",
     ["tests/unit/test_events_and_errors.py::test_a_sign_up_without_time_to_start_and_queue_goes_to_the_queue_at_once"]),
    ("attach-trigger refuses a setting botocore would drop", "stacks/attach_trigger.py",
     "if missing := left_out(before, request):", "if missing := []:",
     ["tests/infra/test_attach_trigger.py::test_a_setting_botocore_does_not_know_is_refused_by_name"]),
    ("attach-trigger reads the pool back", "stacks/attach_trigger.py",
     'unexpected = [p for p in changed(before, after) if p not in (TRIGGER, DEPRECATED, "LastModifiedDate")]',
     "unexpected = []",
     ["tests/infra/test_attach_trigger.py::test_a_pool_that_changed_beyond_its_trigger_is_reported"]),
    ("the secret's key only through Secrets Manager", "stacks/workflow.py",
     '                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}))',
     "                    ))",
     ["tests/infra/test_stack.py::test_a_customer_managed_key_on_the_token_is_decrypted_through_secrets_manager_only"]),
    ("synth refuses a Synapse timeout the steps cannot fit", "stacks/workflow.py",
     "if n in wiring.CALLS_SYNAPSE and t < needed}", "if False}",
     ["tests/infra/test_stack.py::test_a_synapse_timeout_the_steps_cannot_fit_stops_synth"]),
    ("wire-data loggers capped at INFO", "lambdas/chat_provisioning/telemetry.py",
     "    logging.getLogger(_library).setLevel(logging.INFO)", "    pass",
     ["tests/unit/test_events_and_errors.py::test_a_debug_root_logger_never_logs_the_token"]),
    ("path segments quoted whole", "lambdas/chat_provisioning/synapse.py",
     'return quote(value, safe="")', "return quote(value)",
     ["tests/unit/test_events_and_errors.py::test_every_url_path_segment_is_quoted_whole"]),
    ("an http Synapse needs an acknowledgment", "lambdas/chat_provisioning/config.py",
     'if self.synapse_url.startswith("http://") and not self.allow_http_synapse:', "if False:",
     ["tests/infra/test_stack.py::test_an_http_synapse_needs_an_acknowledgment"]),
    ("the token only for Synapse's callers", "stacks/workflow.py",
     "for caller in callers.values():\n            allow(caller, [\"secretsmanager:GetSecretValue\"]",
     "for caller in self.steps.values():\n            allow(caller, [\"secretsmanager:GetSecretValue\"]",
     ["tests/infra/test_stack.py::test_the_token_audit_and_leases_are_reached_only_as_designed"]),
    ("custom events only from configured senders", "stacks/triggers.py",
     'bus.add_to_resource_policy(iam.PolicyStatement(\n            sid="OnlyConfiguredSenders"',
     '(lambda dropped: None)(iam.PolicyStatement(\n            sid="OnlyConfiguredSenders"',
     ["tests/infra/test_stack.py::test_custom_events_only_on_the_stacks_bus_from_configured_senders"]),
    ("only the sweep writes plans", "stacks/sweep.py",
     'sid="OnlyTheSweepWritesPlans", effect=iam.Effect.DENY', 'sid="OnlyTheSweepWritesPlans", effect=iam.Effect.ALLOW',
     ["tests/infra/test_stack.py::test_only_the_sweep_writes_its_plans"]),
    ("reserved concurrency for Synapse's callers", "stacks/workflow.py",
     "reserved_concurrent_executions=self.reserved_concurrency(name),",
     "reserved_concurrent_executions=None,",
     ["tests/infra/test_stack.py::test_functions_that_call_synapse_have_reserved_concurrency"]),
    ("every transient error, subclasses too, is retried", "lambdas/chat_provisioning/errors.py",
     "class SynapseRateLimited(TransientError):",
     "class SynapseTimeout(SynapseUnavailable):\n    pass\n\n\nclass SynapseRateLimited(TransientError):",
     ["tests/infra/test_stack.py::test_every_lambda_task_retries_by_the_one_policy"]),
    ("a new pin is a new Lambda asset", "stacks/bundling.py",
     'environment={REQUIREMENTS: " ".join(asset_requirements())},', "",
     ["tests/infra/test_stack.py::test_a_new_pin_is_a_new_lambda_asset"]),
    ("a Retry edited by hand is refused", "statemachines/sweep_users.asl.json",
     '"MaxAttempts": 4,', '"MaxAttempts": 40,',
     ["tests/infra/test_stack.py::test_every_lambda_task_retries_by_the_one_policy"]),
    # The operator's toolbox and the metrics (issue 12)
    ("the failure metric keeps only known causes", "lambdas/chat_provisioning/failure_audit.py",
     'cause=cause if isinstance(cause, str) and cause in CAUSES else "other"', 'cause=cause or "other"',
     [f"{OPERATOR}::test_the_failure_metric_takes_only_known_causes_and_error_names"]),
    ("the failure metric keeps only error-shaped names", "lambdas/chat_provisioning/failure_audit.py",
     'error=error if ERROR_NAME.fullmatch(error) else "other"', 'error=error or "other"',
     [f"{OPERATOR}::test_the_failure_metric_takes_only_known_causes_and_error_names"]),
    ("only declared metrics, with their dimensions, are published", "lambdas/chat_provisioning/telemetry.py",
     "if set(dimensions) != set(METRICS[name]):", "if False:",
     [f"{OPERATOR}::test_only_declared_metrics_with_their_dimensions_are_published"]),
    ("the dashboard shows only what is published", "stacks/monitoring.py",
     'ours("SignUpsStarted", "started")', 'ours("SignUpsBegun", "started")',
     ["tests/infra/test_stack.py::test_the_dashboard_shows_what_is_published_and_nothing_else"]),
    ("a lookup cannot change Cognito's filter", "toolbox/operations.py",
     r""" or any(c in who for c in '"\\'):""", ":",
     [f"{TOOLBOX}::test_errors_are_json_with_exit_1_never_a_traceback_or_drifts_2"]),
    ("a usage error is exit 1, not drift's 2", "toolbox/cli.py",
     '        print(json.dumps({"error": f"{self.prog}: {message}"}))\n        sys.exit(1)',
     "        super().error(message)",
     [f"{TOOLBOX}::test_errors_are_json_with_exit_1_never_a_traceback_or_drifts_2"]),
    ("the local redrive refuses what AWS refuses", "local_run/aws_server.py",
     "if execution.status not in REDRIVABLE or failed_state is None:", "if failed_state is None:",
     [f"{TOOLBOX}::test_a_failed_run_is_named_then_redriven_where_it_failed"]),
    ("the operator's policy allows the commands' calls", "stacks/provisioning_stack.py",
     '"states:GetExecutionHistory", "states:RedriveExecution"]', '"states:GetExecutionHistory"]',
     [f"{TOOLBOX}::test_a_failed_run_is_named_then_redriven_where_it_failed"]),
    ("a user's executions name the user", "lambdas/chat_provisioning/triggers.py",
     'f"sync-{sub}-{bridge.id}"', 'f"sync-{bridge.id}"',
     ["tests/workflow/test_sync.py::test_a_record_without_the_sub_falls_back_to_a_username_that_is_there"]),
    ("a trigger that cannot make its clients still queues the sign-up", "lambdas/chat_provisioning/signup.py",
     "    try:\n        job = signup_job(event)\n        logger.append_keys(sub=job[\"sub\"])\n        ports = ports or signup_ports()",
     "    ports = ports or signup_ports()\n    try:\n        job = signup_job(event)\n        logger.append_keys(sub=job[\"sub\"])\n",
     ["tests/unit/test_events_and_errors.py::test_a_trigger_whose_clients_cannot_be_made_still_queues_the_sign_up"]),
    # Going live on a Synapse that has users already (issue 21)
    ("an upsert keeps every other provider's link", "lambdas/chat_provisioning/synapse.py",
     '{"external_ids": links + [ours]}', '{"external_ids": [ours]}',
     ["tests/integration/test_contracts.py::test_an_account_made_elsewhere_is_adopted_and_keeps_every_other_link"]),
    ("a level the bot cannot change is planned as a finding", "lambdas/chat_provisioning/sweep_plan.py",
     "if why := beyond_the_bot(content, user_id, level, config.bot_user_id):",
     "if False and (why := beyond_the_bot(content, user_id, level, config.bot_user_id)):",
     ["tests/unit/test_sweep_plan.py::test_a_level_the_bot_cannot_change_is_a_finding_never_a_fix"]),
    ("a run records a level the bot cannot change, and goes on", "lambdas/chat_provisioning/steps.py",
     "        except LevelBeyondTheBot:\n", "        except ZeroDivisionError:\n",
     ["tests/unit/test_steps.py::test_a_level_the_bot_cannot_change_is_a_finding_not_a_failure"]),
    ("a room whose level is a finding is not left either", "lambdas/chat_provisioning/steps.py",
     "configured.room_id in earned | beyond:", "configured.room_id in earned:",
     ["tests/unit/test_steps.py::test_a_level_the_bot_cannot_change_is_a_finding_not_a_failure"]),
    ("demotions and leaves count against the cap", "lambdas/chat_provisioning/sweep_plan.py",
     'REMOVALS: tuple[FixKind, ...] = ("leave", "demote", "deactivate")', 'REMOVALS: tuple[FixKind, ...] = ("deactivate",)',
     ["tests/unit/test_sweep_plan.py::test_demotions_and_leaves_count_with_deactivations_and_a_held_plan_still_applies_what_adds"]),
    ("a held plan applies only the users whose fixes add", "lambdas/chat_provisioning/sweep_plan.py",
     "return tuple(u for u in self.users if u not in self.held_back(held))", "return self.users",
     ["tests/unit/test_sweep_plan.py::test_demotions_and_leaves_count_with_deactivations_and_a_held_plan_still_applies_what_adds"]),
    ("the import adds groups only to users Cognito still enables", "toolbox/operations.py",
     'if found is None or standing(found[0]) != "confirmed":', "if found is None:",
     [f"{OPERATOR}::test_the_import_adds_groups_only_to_users_still_enabled_and_confirmed"]),
    ("the import's grant is not in the everyday policy", "stacks/provisioning_stack.py",
     'allowed(["cognito-idp:ListUsers"], [pool]),', 'allowed(["cognito-idp:ListUsers", "cognito-idp:AdminAddUserToGroup"], [pool]),',
     [f"{ADOPTION}::test_the_import_adds_only_reviewed_proposals_still_true_and_needs_its_own_policy"]),
    ("the import adds only what a person reviewed", "toolbox/operations.py",
     "[p for p in proposed if (p[\"sub\"], p[\"group\"]) in seen], progress)", "proposed, progress)",
     [f"{ADOPTION}::test_the_import_adds_only_reviewed_proposals_still_true_and_needs_its_own_policy"]),
    ("the sweep plans the adoption of accounts without our tie", "lambdas/chat_provisioning/sweep_plan.py",
     'if status == "confirmed" and links is not None and (config.auth_provider, user.sub) not in links:', 'if False:',
     [f"{ADOPTION}::test_the_first_plan_lists_exactly_the_expected_changes"]),
    ("a held sweep creates and promotes nobody", "lambdas/chat_provisioning/sweep_plan.py",
     'SAFE_WHEN_HELD: tuple[FixKind, ...] = ("adopt", "join")',
     'SAFE_WHEN_HELD: tuple[FixKind, ...] = ("adopt", "join", "create", "promote")',
     [f"{ATTACKS}::test_an_emptied_pool_holds_the_sweep_and_it_never_erases"]),
    ("a run does not kick whom Matrix would not let the bot kick", "lambdas/chat_provisioning/steps.py",
     "            if beyond_the_bots_kick(rt.synapse.power_levels(configured.room_id), user_id, rt.synapse.bot_user_id):",
     "            if False:",
     ["tests/unit/test_steps.py::test_a_member_the_bot_cannot_remove_is_a_finding_not_a_failure"]),
    ("a banned account gets no tie", "lambdas/chat_provisioning/synapse.py",
     'if existing is not None and (not body or existing.get("deactivated")):', "if existing is not None and not body:",
     ["tests/integration/test_synapse_adapter.py::test_a_banned_account_made_elsewhere_is_not_written"]),
    ("a level is decided on a Cognito read taken inside the room's lease", "lambdas/chat_provisioning/steps.py",
     "            with rt.locks.hold(room_id) as lease:\n                level = desired_levels(cognito_now()[1], rt.config)[room]\n",
     "            level = desired_levels(cognito_now()[1], rt.config)[room]\n            with rt.locks.hold(room_id) as lease:\n",
     [f"{ATTACKS}::test_a_run_that_waited_for_a_rooms_lease_grants_what_cognito_says_after_the_wait",
      "tests/unit/test_steps.py::test_assign_roles_decides_a_level_on_a_read_taken_inside_the_rooms_lease"]),
    ("JoinRooms joins what Cognito gives at the join", "lambdas/chat_provisioning/steps.py",
     'status, groups, changed = granted_now(rt, state, "JoinRooms")', "status, groups, changed = state.cognito, state.groups, []",
     [f"{ATTACKS}::test_a_redrive_writes_on_cognitos_word_at_the_write"]),
    ("a level is taken back from a non-member", "lambdas/chat_provisioning/steps.py",
     "                changed = rt.synapse.set_power_levels(room_id, {user_id: level}, lease)\n",
     "                if level is None and room_id not in rt.synapse.joined_rooms(user_id):\n                    continue\n"
     "                changed = rt.synapse.set_power_levels(room_id, {user_id: level}, lease)\n",
     [f"{ATTACKS}::test_a_level_outlives_no_membership",
      "tests/unit/test_steps.py::test_a_level_outlives_a_membership_and_is_taken_back_all_the_same"]),
    ("the sweep takes back levels Cognito's users no longer hold, members or not", "lambdas/chat_provisioning/sweep_plan.py",
     "    fixes += stranger_fixes\n", "",
     ["tests/unit/test_sweep_plan.py::test_every_level_no_role_grants_is_taken_back_member_or_not"]),
    ("a membership no group explains is seen", "lambdas/chat_provisioning/sweep_plan.py",
     "            if user_id not in matrix.members.get(room_id, ()) or room_id in earned | beyond:\n",
     "            if True:\n",
     ["tests/unit/test_sweep_plan.py::test_a_membership_no_group_explains_is_a_finding_or_with_the_flag_a_leave"]),
    ("a leveled room gone fails no run", "lambdas/chat_provisioning/steps.py",
     "        except RoomNotFound:  #", "        except ZeroDivisionError:  #",
     ["tests/unit/test_steps.py::test_a_leveled_room_gone_is_a_finding_not_every_runs_failure"]),
    ("a run started before issue 22 can be redriven", "lambdas/chat_provisioning/models.py",
     'if k not in ("display_name", "joined")}', "}",
     ["tests/unit/test_steps.py::test_a_run_started_before_the_state_lost_its_name_and_rooms_is_still_redriven"]),
    ("an account Cognito does not tie is never kicked", "lambdas/chat_provisioning/steps.py",
     'if created_now or state.cognito == "absent":', "if created_now:",
     ["tests/unit/test_steps.py::test_an_account_cognito_does_not_tie_is_never_kicked"]),
    ("no grant puts a user at the bot's own level", "lambdas/chat_provisioning/policy.py",
     "    if level == bot_level:\n", "    if False:\n",
     ["tests/unit/test_policy.py::test_the_bots_own_level_is_never_granted"]),
    ("synth refuses a role at the bot's level", "lambdas/chat_provisioning/config.py",
     "        if irrevocable:\n", "        if False:\n",
     ["tests/unit/test_policy.py::test_a_role_at_the_bots_level_is_refused_at_synth"]),
    ("a sweep asked to align the role rooms lowers their thresholds", "lambdas/chat_provisioning/steps.py",
     "aligned = align_rooms(rt) if request.align_rooms and not request.dry_run else {}", "aligned = {}",
     [f"{ATTACKS}::test_staff_keep_every_admin_power_below_the_bot_and_can_be_taken_back",
      "tests/unit/test_steps.py::test_a_sweep_aligns_the_role_rooms_only_when_asked_and_not_on_a_dry_run"]),
    ("a dry run aligns nothing", "lambdas/chat_provisioning/steps.py",
     "if request.align_rooms and not request.dry_run else {}", "if request.align_rooms else {}",
     ["tests/unit/test_steps.py::test_a_sweep_aligns_the_role_rooms_only_when_asked_and_not_on_a_dry_run"]),
    ("no threshold is lowered from above the bot's level", "lambdas/chat_provisioning/policy.py",
     "return ({k: v for k, v in above.items() if v <= bot_level}", "return ({k: v for k, v in above.items()}",
     ["tests/unit/test_policy.py::test_a_rooms_thresholds_are_lowered_to_its_admins_level_and_no_further"]),
    ("an account linked to nothing is its sub's (the JWT rule)", "lambdas/chat_provisioning/policy.py",
     " or (config.jwt_localpart_is_sub and not links)", "",
     [f"{ATTACKS}::test_an_account_cognito_no_longer_vouches_for_keeps_no_session",
      "tests/unit/test_sweep_plan.py::test_an_account_cognito_no_longer_knows_is_deactivated_if_it_is_that_users"]),
    ("a user Cognito holds unconfirmed is logged out", "lambdas/chat_provisioning/steps.py",
     'if status == "unconfirmed" and (ended := rt.synapse.log_out(user_id)):', "if False:",
     [f"{ATTACKS}::test_an_account_cognito_no_longer_vouches_for_keeps_no_session",
      "tests/unit/test_steps.py::test_a_user_cognito_holds_unconfirmed_keeps_no_session_and_no_roles_room"]),
    ("a user Cognito holds unconfirmed keeps no role's room", "lambdas/chat_provisioning/steps.py",
     'if rt.config.leave_rooms_on_role_removal or status == "unconfirmed":', "if rt.config.leave_rooms_on_role_removal:",
     ["tests/unit/test_steps.py::test_a_user_cognito_holds_unconfirmed_keeps_no_session_and_no_roles_room"]),
    ("the sweep plans an unconfirmed user's leaves whatever the flag", "lambdas/chat_provisioning/sweep_plan.py",
     'if not config.leave_rooms_on_role_removal and status == "confirmed":', "if not config.leave_rooms_on_role_removal:",
     ["tests/unit/test_sweep_plan.py::test_a_user_not_confirmed_keeps_no_roles_room_whatever_the_flag"]),
    ("a held sweep still applies what Cognito states by status", "lambdas/chat_provisioning/sweep_plan.py",
     " and f.sub not in self.stated}", "}",
     [f"{ATTACKS}::test_throwaway_accounts_deleted_without_an_event_hold_no_stated_repair",
      "tests/unit/test_sweep_plan.py::test_what_cognito_states_by_status_is_never_held_and_never_counted"]),
    ("what Cognito states by status is not counted against the cap", "lambdas/chat_provisioning/sweep_plan.py",
     "if f.kind in REMOVALS and f.sub not in self.stated)", "if f.kind in REMOVALS)",
     ["tests/unit/test_sweep_plan.py::test_what_cognito_states_by_status_is_never_held_and_never_counted"]),
    ("a reactivation is on record before the act", "lambdas/chat_provisioning/steps.py",
     "        rt.audit.record_actions(state.sub, user_id, run.execution, state.actions + (done,), state.cause)\n", "",
     ["tests/unit/test_steps.py::test_provision_user_reactivates_only_a_deactivation_of_ours_on_cognitos_enable"]),
    ("a reactivation on record before its act is retried", "lambdas/chat_provisioning/audit.py",
     ' or (last["outcome"] == "reactivated" and last.get("execution") == execution)', "",
     ["tests/unit/test_steps.py::test_provision_user_reactivates_only_a_deactivation_of_ours_on_cognitos_enable"]),
    ("local down stops what any state.json names", "local_run/env.py",
     "    started = pids(state_dir)\n", "    started = LocalState.load(state_dir).pids\n",
     ["tests/workflow/test_local_env.py::test_down_stops_what_a_state_json_of_another_shape_names"]),
]


def copy_of_checkout(into: Path) -> None:
    for path in subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.splitlines():
        if (ROOT / path).exists():
            (into / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, into / path)
    for installed in (".venv", ".synapse", ".checkov-venv", "node_modules", ".wheels"):  # as `make install` left them
        (into / installed).symlink_to(ROOT / installed)


def main() -> int:
    unnoticed = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_of_checkout(copy)
        # The copy's code first: the project is installed in editable mode from this checkout.
        environment = {**os.environ, "PYTHONPATH": f"{copy / 'lambdas'}{os.pathsep}{copy}"}
        # `mutations.py WORDS...`: only the protections whose names hold one of the words
        chosen = [m for m in MUTATIONS if not sys.argv[1:] or any(w in m[0] for w in sys.argv[1:])]
        for protection, path, made, removed, tests in chosen:
            source = (copy / path).read_text()
            if source.count(made) != 1:
                print(f"STALE    {protection}: {path} no longer holds the code it mutates")
                unnoticed += 1
                continue
            (copy / path).write_text(source.replace(made, removed))
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                 cwd=copy, env=environment, capture_output=True, text=True)
            (copy / path).write_text(source)
            last = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
            noticed = run.returncode == 1 and " failed" in last  # a test failed, not the run
            unnoticed += not noticed
            print(f"{'noticed ' if noticed else 'MISSED  '} {protection} ({time.monotonic() - started:.0f} s): {last}",
                  flush=True)
    print(f"{len(chosen) - unnoticed} of {len(chosen)} protections proven by a failing test")
    return 1 if unnoticed else 0


if __name__ == "__main__":
    sys.exit(main())

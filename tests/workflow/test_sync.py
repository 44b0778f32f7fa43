"""Role sync after Cognito changes, end to end: moto's Cognito changed, CloudTrail's record
delivered through the deployed rule's pattern, the SyncUser workflow, a real Synapse."""


def synapse_user(local, sub) -> dict:
    return local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(sub)}").json()


def trail(local, sub, since=0):
    return [(a["step"], a["outcome"], a.get("event")) for a in local.audit.trail(sub)[since:]]


def test_group_added_promotes_with_the_event_audited(local, sub):
    local.signup(sub, ["analysts"], None)
    before = len(local.audit.trail(sub))
    result = local.cognito_change(sub, "AdminAddUserToGroup", "staff")
    assert result["matched"] and result["status"] == "SUCCEEDED"
    assert local.rooms(sub) == {("The Red Room", 0), ("Analysts", 0), ("Staff", 100)}
    assert ("AssignRoles", "set:100", "AdminAddUserToGroup") in trail(local, sub, before)


def test_staff_removed_cannot_be_demoted_by_a_peer_bot_and_says_so(local, sub):
    """Phenom's staff level (100) is the bot's: Synapse forbids the bot to demote a peer, so the
    sync fails at AssignRoles with a typed, audited error instead of retrying."""
    local.signup(sub, ["staff"], None)
    result = local.cognito_change(sub, "AdminRemoveUserFromGroup", "staff")
    assert (result["status"], result["failed_state"], result["error"]) == ("FAILED", "AssignRoles", "PowerLevelForbidden")
    failure = local.audit.trail(sub)[-1]
    assert failure["outcome"] == "failed" and "peer" in failure["cause"]
    assert failure["event"] == "AdminRemoveUserFromGroup"
    assert ("Staff", 100) in local.rooms(sub)


def test_removed_role_room_is_kept_by_default(local, sub):
    local.signup(sub, ["analysts", "experiencers"], None)
    result = local.cognito_change(sub, "AdminRemoveUserFromGroup", "analysts")
    assert result["status"] == "SUCCEEDED", result  # failed_state and error, if it failed
    assert local.rooms(sub) == {("The Red Room", 0), ("Analysts", 0), ("Experiencers", 0)}


def test_disable_enable_delete(local, sub):
    local.signup(sub, ["experiencers"], "Vic")
    assert local.cognito_change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"
    assert synapse_user(local, sub)["deactivated"] is True
    assert local.cognito_change(sub, "AdminEnableUser")["status"] == "SUCCEEDED"
    assert synapse_user(local, sub)["deactivated"] is False
    assert local.rooms(sub) == {("The Red Room", 0), ("Experiencers", 0)}  # rejoined
    assert local.cognito_change(sub, "AdminDeleteUser")["status"] == "SUCCEEDED"
    assert synapse_user(local, sub)["deactivated"] is True
    assert [t[1] for t in trail(local, sub) if t[0] in ("DeactivateUser", "ProvisionUser")][-3:] == [
        "deactivated", "reactivated", "deactivated"]


def test_a_matrix_admins_deactivation_survives_group_changes_and_enables(local, sub):
    """Only Cognito's enable brings a deactivated user back, and only from a deactivation this
    workflow made: an admin's ban in Matrix survives (the sync fails, typed and audited)."""
    local.signup(sub, [], None)
    local.synapse.deactivate(local.user_id(sub), erase=False)
    result = local.cognito_change(sub, "AdminAddUserToGroup", "analysts")
    assert (result["failed_state"], result["error"]) == ("ProvisionUser", "UserDeactivated")
    enabled = local.cognito_change(sub, "AdminEnableUser")
    assert (enabled["failed_state"], enabled["error"]) == ("ProvisionUser", "UserDeactivated")
    assert synapse_user(local, sub)["deactivated"] is True


def test_a_late_event_converges_to_cognito_now(local, sub):
    """The event says 'added to staff', but staff was removed again before it arrived."""
    local.signup(sub, [], None)
    idp, pool = local.aws["cognito-idp"], local.state["user_pool_id"]
    idp.admin_add_user_to_group(UserPoolId=pool, Username=sub, GroupName="staff")
    idp.admin_remove_user_from_group(UserPoolId=pool, Username=sub, GroupName="staff")
    late = local.deliver_cloudtrail("AdminAddUserToGroup", {"userPoolId": pool, "username": sub, "groupName": "staff"})
    assert late["status"] == "SUCCEEDED"
    assert local.rooms(sub) == {("The Red Room", 0)}


def test_out_of_order_and_doubled_events_converge(local, sub):
    local.signup(sub, ["analysts"], None)
    idp, pool = local.aws["cognito-idp"], local.state["user_pool_id"]
    idp.admin_disable_user(UserPoolId=pool, Username=sub)
    idp.admin_enable_user(UserPoolId=pool, Username=sub)
    idp.admin_disable_user(UserPoolId=pool, Username=sub)  # Cognito: disabled
    params = {"userPoolId": pool, "username": sub}
    for name in ("AdminEnableUser", "AdminDisableUser", "AdminEnableUser"):  # any order
        assert local.deliver_cloudtrail(name, params)["status"] == "SUCCEEDED"
    assert synapse_user(local, sub)["deactivated"] is True

    event = {"version": "0", "id": f"doubled-{sub}", "detail-type": "Sync chat user",
             "source": "chat-provisioning", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
             "region": "us-east-1", "resources": [], "detail": {"sub": sub}}
    first = local.invoke("OnCognitoChange", event)
    again = local.invoke("OnCognitoChange", event)
    assert first["execution"] == again["execution"]  # one event, one execution


def test_an_unknown_group_is_an_audited_finding_that_stops_nothing(local, sub):
    local.signup(sub, ["analysts"], None)
    idp, pool = local.aws["cognito-idp"], local.state["user_pool_id"]
    try:
        idp.create_group(UserPoolId=pool, GroupName="hasura-admins")
    except idp.exceptions.GroupExistsException:
        pass
    result = local.cognito_change(sub, "AdminAddUserToGroup", "hasura-admins")
    assert result["status"] == "SUCCEEDED"
    assert local.rooms(sub) == {("The Red Room", 0), ("Analysts", 0)}
    assert ("ReadCognitoUser", "unknown_group:hasura-admins", "AdminAddUserToGroup") in trail(local, sub)


def test_events_for_other_pools_or_without_a_user_start_nothing(local, sub):
    other = local.deliver_cloudtrail("AdminDisableUser", {"userPoolId": "us-east-1_other", "username": sub})
    assert other == {"matched": False}
    nobody = local.send_sync_event({"sub": "not-a-sub"})  # refused, and kept in the events DLQ
    assert nobody["matched"] and (nobody["started"], nobody["error"]) == (False, "InvalidInput")
    assert nobody["dead_lettered"]

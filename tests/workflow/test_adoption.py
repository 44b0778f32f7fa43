"""Going live on a Synapse that has users already (Phenom's brown field): accounts the old
Lambda made (no external id, The Red Room only) and accounts an SSO login linked to its
provider. The workflow adopts them (adds its tie) and keeps every other provider's link, on
every path that writes the user."""



def sso_link(sub) -> tuple[str, str]:
    """A Google login's link (an external id is one account's on the whole server)."""
    return ("oidc-google", f"g-{sub[:8]}")


def links_of(local, sub) -> list[tuple[str, str]]:
    user = local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(sub)}").json()
    return sorted((e["auth_provider"], e["external_id"]) for e in user["external_ids"])


def old_lambdas_account(local, sub, links: tuple[tuple[str, str], ...] = ()) -> None:
    """What chat-user-provisioner left: the user made by the admin API, in The Red Room."""
    user = local.user_id(sub)
    local.admin("PUT", f"/_synapse/admin/v2/users/{user}", json={"external_ids": [
        {"auth_provider": p, "external_id": e} for p, e in links]}).raise_for_status()
    local.synapse.join(local.config.rooms["red_room"].room_id, user)


def test_an_sso_link_survives_sign_up_group_change_sync_sweep_and_reactivation(local, sub):
    old_lambdas_account(local, sub, (sso_link(sub),))
    ours = sorted([sso_link(sub), ("cognito", sub)])

    signed_up = local.cognito.signup(sub, ["analysts"], None)
    assert signed_up["status"] == "SUCCEEDED"
    assert local.audit.trail(sub)[0]["outcome"] == "adopted"
    assert links_of(local, sub) == ours
    assert local.cognito.change(sub, "AdminAddUserToGroup", "experiencers")["status"] == "SUCCEEDED"
    assert links_of(local, sub) == ours
    assert local.events.send_sync_event({"sub": sub})["status"] == "SUCCEEDED"
    assert local.operator.start(sub, {"sub": sub, "cause": "sweep"})["status"] == "SUCCEEDED"  # a sweep's run
    assert links_of(local, sub) == ours
    assert local.cognito.change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"
    assert local.cognito.change(sub, "AdminEnableUser")["status"] == "SUCCEEDED"
    assert [a["outcome"] for a in local.audit.trail(sub) if a["step"] == "ProvisionUser"][-1] == "reactivated"
    assert links_of(local, sub) == ours
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0), ("Experiencers", 0)}


def test_an_old_lambdas_account_is_adopted_once_and_placed_by_its_groups(local, sub):
    old_lambdas_account(local, sub)
    assert local.cognito.signup(sub, ["analysts"], None)["status"] == "SUCCEEDED"
    assert links_of(local, sub) == [("cognito", sub)]
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0)}
    assert local.events.send_sync_event({"sub": sub})["status"] == "SUCCEEDED"
    outcomes = [a["outcome"] for a in local.audit.trail(sub) if a["step"] == "ProvisionUser"]
    assert outcomes == ["adopted", "unchanged"]

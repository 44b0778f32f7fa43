"""The brown-field tier (test_adoption.py) again, its same tests, on Synapse's current release:
Phenom runs 1.105, and the day it upgrades, going live must still hold. A module of its own, so
that make test's workers run the two releases side by side."""

import pytest

from local_run import env, synapse_server
from tests.workflow.test_adoption import (  # noqa: F401 - collected here too, on this module's stack
    field,
    test_an_sso_link_survives_sign_up_group_change_sync_sweep_and_reactivation,
    test_the_first_plan_lists_exactly_the_expected_changes,
    test_the_go_live_sweep_adopts_starts_no_run_that_must_fail_and_touches_no_stranger,
    test_the_import_adds_only_reviewed_proposals_still_true_and_needs_its_own_policy,
)


@pytest.fixture(scope="module")
def local(tmp_path_factory, config):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(synapse_server.VERSION_ENV, synapse_server.CURRENT)
        with env.running(tmp_path_factory.mktemp("brown-field-current"), config) as local:
            assert local.state.synapse_version == synapse_server.CURRENT
            yield local

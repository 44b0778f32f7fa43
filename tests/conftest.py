"""Shared fixtures. The local environment (a real Synapse, moto executing the ASL with the
real handlers) is started once per session, on the test deployment's config (not cdk.json's,
which `make demo` runs); each test signs up its own users."""

import os
import uuid

import pytest

from chat_provisioning.domain.config import ChatConfig
from local_run import env
from tests.fakes import sample_config


@pytest.fixture(scope="session")
def config() -> ChatConfig:
    return sample_config()


@pytest.fixture(scope="session")
def local(tmp_path_factory, config) -> env.LocalEnv:
    # Once every test that used it has run, nothing the stack wrote may hold the bot's token
    # or an email (env.running checks).
    with env.running(tmp_path_factory.mktemp("local"), config) as local:
        yield local


@pytest.fixture
def sub() -> str:
    return str(uuid.uuid4())


class FakeContext:
    """The attributes Powertools reads from a Lambda context."""
    function_name = "test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    memory_limit_in_mb = 128
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


# The modules that use the session's stack (`local` above), in two units of work: the stack is
# started once per unit, not once per worker that draws one of them, and each unit takes less
# time than the attack module, the longest. A module left out still works: it is a unit of its
# own, and its worker starts a stack for it.
SESSION_STACK_UNITS = (
    ("tests/workflow/test_sync.py", "tests/workflow/test_toolbox.py", "tests/workflow/test_leaks.py"),
    ("tests/workflow/test_workflow.py", "tests/workflow/test_lambda_runtime.py", "tests/workflow/test_power_levels.py",
     "tests/integration/test_contracts.py", "tests/integration/test_synapse_adapter.py"),
)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's; without it (-p no:xdist) nothing to do
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs four pytest-xdist workers; each unit of work goes to one worker whole.
    A test module is one unit, so that what its tests share (a stack, the CLI synth) is built
    once in one worker, but for those that share the session's stack (SESSION_STACK_UNITS); a
    unit test is a unit alone, so that the slow ones (fuzzing) spread."""
    from xdist.scheduler import LoadScopeScheduling

    unit_of = {module: f"session stack {i}" for i, unit in enumerate(SESSION_STACK_UNITS) for module in unit}

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return nodeid if path.startswith("tests/unit/") else unit_of.get(path, path)
    return ModuleScheduling(config, log)

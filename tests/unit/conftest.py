"""The unit tier: offline (`make unit` refuses every socket), on the test config, not cdk.json's:
editing cdk.json for a real deployment must not break it."""

import pytest

from chat_provisioning.config import ChatConfig
from tests.fakes import sample_config


@pytest.fixture(scope="session")
def config() -> ChatConfig:
    return sample_config()

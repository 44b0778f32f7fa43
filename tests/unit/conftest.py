"""The unit tier: offline (`make unit` refuses every socket), on the test config, not cdk.json's:
editing cdk.json for a real deployment must not break it."""

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def no_network():
    """Every socket but a Unix one refused (pytest-socket), in `make unit` and `make test` alike:
    a unit test that reaches for the network fails, whatever else is up."""
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()

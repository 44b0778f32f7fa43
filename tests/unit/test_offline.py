"""The unit tier is offline: its conftest refuses sockets (pytest-socket)."""

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_a_unit_test_cannot_reach_the_network():
    # pytest-socket 0.8 warns as it refuses: the warning is the refusal's, expected here.
    with pytest.warns(UserWarning, match="A test tried to use socket"), pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)

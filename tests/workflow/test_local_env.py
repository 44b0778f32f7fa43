"""The local environment itself: a failed `up` leaves nothing running; `down` stops what any
state.json names."""

import json
import os
import subprocess
import sys

import pytest

from local_run import deploy, env


def test_a_failed_up_stops_what_it_started(tmp_path, config, monkeypatch):
    started = {}
    real_start = env.synapse_server.start

    def start(*args, **kwargs):
        started.update(real_start(*args, **kwargs))
        return started

    def broken(*args, **kwargs):
        raise RuntimeError("deploy failed")
    monkeypatch.setattr(env.synapse_server, "start", start)
    monkeypatch.setattr(deploy, "deploy", broken)
    with pytest.raises(RuntimeError, match="deploy failed"):
        env.up(tmp_path, config)
    assert not (tmp_path / "state.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(started["pid"], 0)


def test_down_stops_what_a_state_json_of_another_shape_names(tmp_path):
    """A state.json an older checkout (or an interrupted `up`) wrote does not fit LocalState:
    `down` reads its pids alone, or the servers it names would run on."""
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        (tmp_path / "state.json").write_text(json.dumps({"pids": {"synapse": server.pid}, "rooms": {}}))
        assert env.down(tmp_path) == {"stopped": ["synapse"]}
        with pytest.raises(ProcessLookupError):  # ended (and reaped) by down
            os.kill(server.pid, 0)
        assert not (tmp_path / "state.json").exists()
    finally:
        server.kill()

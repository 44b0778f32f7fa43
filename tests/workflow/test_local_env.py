"""The local environment itself: a failed `up` leaves nothing running."""

import os

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

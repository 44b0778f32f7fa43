"""A real Synapse on loopback for the demo and the tests: SQLite, room version 10 like
production, registration off, JWT login trusting a local key that stands in for Cognito's."""

import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_provisioning.domain.config import ChatConfig, Room

ROOT = Path(__file__).resolve().parent.parent
# The Synapse releases the local run can start, each in a venv of its own (Makefile):
# production's, the default, with the dependency pins of its day; and the current release.
PRODUCTION, CURRENT = "1.105.1", "1.163.2"
VERSION_ENV = "CHAT_PROVISIONING_SYNAPSE"  # which one `local up`, the demo and the tests start
# The local run's own requests to Synapse (the adapter has its own client): httpx.get() and the
# like make a client per call, and with it a TLS context read from the CA bundle.
loopback = httpx.Client()


def chosen_version() -> str:
    """The release $CHAT_PROVISIONING_SYNAPSE names, by default production's."""
    version = os.environ.get(VERSION_ENV, PRODUCTION)
    if version not in (PRODUCTION, CURRENT):
        sys.exit(f"{VERSION_ENV}={version}: the local run has Synapse {PRODUCTION} and {CURRENT}")
    return version


def synapse_python(version: str) -> Path:
    return ROOT / ".synapse" / version / "bin" / "python"


def homeserver_config(state_dir: Path, port: int, server_name: str, config: ChatConfig,
                      jwt_public_pem: str) -> dict:
    pool = config.user_pool
    return {
        "server_name": server_name,
        "pid_file": str(state_dir / "synapse.pid"),
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "tls": False, "x_forwarded": False,
                       "resources": [{"names": ["client"], "compress": False}]}],
        "database": {"name": "sqlite3", "args": {"database": str(state_dir / "homeserver.db")}},
        "log_config": str(state_dir / "log.config"),
        "media_store_path": str(state_dir / "media"),
        "signing_key_path": str(state_dir / "signing.key"),
        "registration_shared_secret": secrets.token_hex(16),
        "enable_registration": False,
        "report_stats": False,
        "trusted_key_servers": [],
        "federation_domain_whitelist": [],
        "enable_media_repo": False,
        "url_preview_enabled": False,
        "background_updates": {"sleep_enabled": False},
        "default_room_version": "10",
        "suppress_key_server_warning": True,
        "rc_login": {"address": {"per_second": 100, "burst_count": 100},
                     "account": {"per_second": 100, "burst_count": 100}},
        # The mobile app's login: a Cognito ID token. Issuer and audience are the pool's.
        "jwt_config": {
            "enabled": True, "secret": jwt_public_pem, "algorithm": "RS256",
            "subject_claim": "sub",
            "issuer": f"https://cognito-idp.{pool.user_pool_id.split('_')[0]}.amazonaws.com/"
                      f"{pool.user_pool_id}",
            "audiences": [pool.client_id],
        },
    }


def _log_config(state_dir: Path) -> str:
    return json.dumps({
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain",
                              "filename": str(state_dir / "synapse.log")},
                     "access": {"class": "logging.FileHandler", "formatter": "plain",
                                "filename": str(state_dir / "access.log")}},
        # One line per HTTP request Synapse served (requests_served reads them).
        "loggers": {"synapse.access": {"level": "INFO", "handlers": ["access"], "propagate": False}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    })


SERVED = re.compile(r'Processed request: ([0-9.]+)sec.*"([A-Z]+) /')


def requests_served(state_dir: Path) -> list[tuple[str, float]]:
    """Every request Synapse served, from its access log: the method, and Synapse's own
    processing seconds. What the demo, the benchmarks and the request-count test count."""
    path = state_dir / "access.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(m[2], float(m[1])) for line in lines if (m := SERVED.search(line))]


def start(state_dir: Path, port: int, config: ChatConfig, server_name: str = "localhost") -> dict:
    """Start Synapse in the background (the release $CHAT_PROVISIONING_SYNAPSE names, by
    default production's); return what `bootstrap` and `start_again` need."""
    state_dir.mkdir(parents=True, exist_ok=True)
    version = chosen_version()
    (state_dir / "version").write_text(version)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = state_dir / "jwt-private.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    hs = homeserver_config(state_dir, port, server_name, config, public_pem)
    (state_dir / "log.config").write_text(_log_config(state_dir))
    (state_dir / "homeserver.yaml").write_text(json.dumps(hs, indent=1))  # JSON is YAML
    pid = start_again(state_dir, f"http://127.0.0.1:{port}")
    return {"url": f"http://127.0.0.1:{port}", "server_name": server_name, "pid": pid, "version": version,
            "shared_secret": hs["registration_shared_secret"], "jwt_private_key_file": str(key_file)}


def start_again(state_dir: Path, url: str, timeout: float = 60.0) -> int:
    """(Re)start the server on an existing state dir, in the release it was started with, and
    wait for /health."""
    python = synapse_python((state_dir / "version").read_text())
    if not python.exists():
        sys.exit(f"{python} is missing: run `make install` first")
    with open(state_dir / "synapse.out", "ab") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "synapse.app.homeserver",
             "-c", str(state_dir / "homeserver.yaml")],
            cwd=state_dir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Synapse exited with {proc.returncode}; see {state_dir}/synapse.out")
        try:
            if loopback.get(f"{url}/health", timeout=1).status_code == 200:
                return proc.pid
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"Synapse did not answer /health within {timeout}s")


def stop(pid: int, timeout: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            # reap if it is our child, else just poll
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def register_admin(url: str, shared_secret: str, localpart: str) -> str:
    """The shared-secret admin registration Synapse offers with registration disabled."""
    password = hashlib.sha256(shared_secret.encode()).hexdigest()  # stable, local only
    nonce = loopback.get(f"{url}/_synapse/admin/v1/register").json()["nonce"]
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin"]))
    r = loopback.post(f"{url}/_synapse/admin/v1/register", json={
        "nonce": nonce, "username": localpart, "password": password, "admin": True,
        "mac": mac.hexdigest()})
    if r.status_code == 400 and r.json().get("errcode") == "M_USER_IN_USE":
        r = loopback.post(f"{url}/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
            "password": password})
    r.raise_for_status()
    return r.json()["access_token"]


def canary_token(state_dir: Path, user_id: str) -> str:
    """A token for `user_id` whose value we choose, so that the leak scans look for a known,
    recognisable string: Synapse only issues random ones, so it goes into Synapse's own token
    table. Its id is far above Synapse's counter, which would otherwise reuse it."""
    token = f"canary_bot_token_{secrets.token_hex(16)}"
    with closing(sqlite3.connect(state_dir / "homeserver.db", timeout=30)) as db, db:
        db.execute("INSERT INTO access_tokens (id, user_id, token) "
                   "SELECT COALESCE(MAX(id), 0) + 1000000, ?, ? FROM access_tokens", (user_id, token))
    return token


def bootstrap(state_dir: Path, url: str, shared_secret: str, server_name: str,
              config: ChatConfig) -> tuple[str, dict[str, Room]]:
    """Register the bot and give it a canary token (the registration's is logged out), lift
    its rate limits, create the configured rooms (invite-only, the bot at 100, Phenom's names).
    Returns the bot token and the rooms with their new IDs."""
    registered = register_admin(url, shared_secret, config.bot_localpart)
    bot = f"@{config.bot_localpart}:{server_name}"
    token = canary_token(state_dir, bot)
    loopback.post(f"{url}/_matrix/client/v3/logout",
               headers={"Authorization": f"Bearer {registered}"}).raise_for_status()
    auth = {"Authorization": f"Bearer {token}"}
    loopback.post(f"{url}/_synapse/admin/v1/users/{bot}/override_ratelimit",
               json={"messages_per_second": 0, "burst_count": 0}, headers=auth).raise_for_status()
    rooms = {}
    for key, room in config.rooms.items():
        r = loopback.post(f"{url}/_matrix/client/v3/createRoom", headers=auth, json={
            "name": room.name, "preset": "private_chat", "room_version": "10",
            "power_level_content_override": {"users": {bot: 100}}})
        r.raise_for_status()
        rooms[key] = Room(name=room.name, room_id=r.json()["room_id"])
    return token, rooms

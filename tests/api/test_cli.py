"""The service commands as a user runs them: token create, serve, worker."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import httpx

from tests.conftest import PAVEMENT, pavement_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_token_serve_and_worker(tmp_path):
    data = tmp_path / "data"
    made = pavement_cli("token", "create", "--role", "engineer", "--name", "road-office", "--data", str(data))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("pvt_") and "\n" not in token
    assert "shown only now" in made.stderr
    assert token not in (data / "pavement.db").read_bytes().decode("latin-1")

    port = _free_port()
    server = subprocess.Popen(
        [str(PAVEMENT), "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/segments", headers={"Authorization": f"Bearer {token}"}
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, server.stderr.read().decode()
        assert answer.status_code == 200
        assert answer.json() == {"type": "FeatureCollection", "features": [], "numberReturned": 0}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/segments").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        server.stderr.close()

    idle = pavement_cli("worker", "--once", "--data", str(data))
    assert idle.returncode == 0, idle.stderr
    assert idle.stdout.strip() == "0 jobs run"


def test_bad_service_options_are_one_line(tmp_path):
    dev = pavement_cli("serve", "--dev", "--host", "0.0.0.0", "--data", str(tmp_path))
    assert dev.returncode == 1
    assert dev.stderr.strip().startswith("ConfigError: service settings:")
    assert "127.0.0.1" in dev.stderr and "Traceback" not in dev.stderr
    role = pavement_cli("token", "create", "--role", "boss", "--name", "x", "--data", str(tmp_path))
    assert role.returncode == 1
    assert role.stderr.strip() == "ConfigError: role 'boss' is unknown; use one of uploader, engineer, admin"

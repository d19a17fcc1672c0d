"""Running Dash callbacks as plain functions, with the trigger they would see in the app, and
running the app in a server process of its own (one artifact per process)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextvars import copy_context
from pathlib import Path

import requests
from dash._callback_context import context_value
from dash._utils import AttributeDict

ROOT = Path(__file__).resolve().parents[1]


def run_callback(func, triggered: dict, **kwargs):
    """triggered: {"component.prop": value} for the inputs that changed; kwargs: the callback's
    keyword arguments (its dict-style signature)."""
    def call():
        context_value.set(AttributeDict(triggered_inputs=[
            {"prop_id": k, "value": v} for k, v in triggered.items()]))
        return func(**kwargs)

    return copy_context().run(call)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python app.py --artifact ...` on a free loopback port, for a test that needs its own."""

    def __init__(self, artifact, *args, env=None, timeout=120):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--artifact", str(artifact), "--port", str(self.port),
             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})})
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.proc.stdout.read()}")
            try:
                if requests.get(self.url + "/api/status", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the app did not start")

    def status(self) -> dict:
        return requests.get(self.url + "/api/status", timeout=10).json()

    def wait_model(self, timeout=300) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            st = self.status()
            if st["model"]["state"] not in ("idle", "loading"):
                return st
            time.sleep(0.5)
        raise AssertionError("the model never finished loading")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def app_with_model(artifact_dir, timeout: float = 600):
    """The process's one app over `artifact_dir`, its model service started and ready."""
    from cxrviz.app import create_app, start_model
    from cxrviz.appstate import current

    app = create_app(artifact_dir)
    start_model()
    assert current().service.wait(timeout) == "ready", current().service.message
    return app

"""Finding the real services the suite needs: skip off-CI when absent, fail under CI=true."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TRIAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    """Skip when a service is down on a laptop; under CI a missing service is a failure."""
    if reachable(host, port):
        return
    if IN_CI:
        pytest.fail(f"{service} is not reachable on {host}:{port} under CI=true")
    pytest.skip(f"{service} not running on {host}:{port}")

"""The local InfluxDB server for tests: skip without `influxd`, fail under CI=true."""

from __future__ import annotations

import os

import pytest

from raven.storage.influxd import INFLUXD, InfluxServer, free_port

__all__ = ["InfluxServer", "free_port", "require_influxd"]


def require_influxd() -> str:
    """The influxd path; skips the test without it, fails under CI=true."""
    if INFLUXD is None:
        reason = "influxd (Debian package 'influxdb', 1.x) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must install it (.ci/run does)")
        pytest.skip(f"{reason}; install it to run the InfluxDB tests")
    return INFLUXD

"""Run `promtool check metrics` on exposition text (Debian's prometheus package)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def promtool_check(text: bytes) -> str:
    """promtool's output; fails the test on lint problems. Skips when promtool is
    missing, except under CI=true, where .ci/run installs it and absence is a failure."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool not found under CI=true: .ci/run should install 'prometheus'")
        pytest.skip("promtool not installed (apt-get install prometheus); CI installs it")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, f"promtool check metrics failed:\n{output}"
    return output

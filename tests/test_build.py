"""`make build` gives a wheel and an sdist; the wheel installed in a fresh venv runs `raven`.

Offline and fast: the fresh venv gets only the wheel (`--no-deps`); its
runtime dependencies come from the development venv's site-packages through
a plain `.pth` path line (which adds that folder to sys.path without running
its own `.pth` files, so the editable install of the source tree stays out).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_make_build_gives_a_wheel_that_installs_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run("make", "-s", "build", f"DIST={dist}", f"PY={sys.executable}")
    wheels = list(dist.glob("raven_md-*.whl"))
    sdists = list(dist.glob("raven_md-*.tar.gz"))
    assert len(wheels) == 1
    assert len(sdists) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert {"raven/v1/market_data_pb2.py", "raven/v1/market_data_pb2_grpc.py"} <= names
    assert "raven/ops/metrics.py" in names
    with tarfile.open(sdists[0]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"proto/raven/v1/market_data.proto", "python_client/test.py"} <= members

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)  # ensurepip: bundled, offline
    python = env_dir / "bin" / "python"
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheels[0])

    where = run(
        python,
        "-c",
        "import raven, raven.v1.market_data_pb2 as pb; "
        "print(raven.__file__); print(pb.DESCRIPTOR.name)",
        cwd=tmp_path,
    ).split()
    assert Path(where[0]).is_relative_to(site), "raven must come from the installed wheel"
    assert where[1] == "raven/v1/market_data.proto"
    usage = run(env_dir / "bin" / "raven", "--help", cwd=tmp_path)  # the console script
    for command in ("serve", "sim", "tail"):
        assert command in usage

"""A local InfluxDB 1.x server (Debian's `influxd`) on free loopback ports.

Used by the tests and the storage benchmark.

The config is generated in a temp dir: meta/data/wal there, HTTP and the RPC
service on 127.0.0.1, reporting and every other service off. `stop()` and
`start()` keep the ports and the data, so a test can take the server down
and bring it back as an outage would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEBIAN_PATH = Path("/usr/bin/influxd")
INFLUXD = shutil.which("influxd") or (str(DEBIAN_PATH) if DEBIAN_PATH.exists() else None)
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  auth-enabled = {auth}
  write-tracing = false
  pprof-enabled = false

[monitor]
  store-enabled = false

[retention]
  enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[shard-precreation]
  enabled = false
"""


class InfluxServer:
    def __init__(self, binary: str, root: Path, auth: bool = False) -> None:
        self.binary = binary
        self.root = root
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config_path = root / "influxdb.conf"
        self.log_path = root / "influxd.log"
        self.config_path.write_text(
            CONFIG.format(
                root=root,
                rpc_port=self.rpc_port,
                http_port=self.http_port,
                auth="true" if auth else "false",
            )
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "run", "-config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self._proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"influxd exited with {self._proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"influxd did not answer /ping in {START_TIMEOUT_S} s")
            time.sleep(0.05)

    def query(self, q: str) -> bytes:
        """Run an InfluxQL statement over HTTP (e.g. create the first admin user)."""
        data = urllib.parse.urlencode({"q": q}).encode()
        with urllib.request.urlopen(self.url + "/query", data=data, timeout=10) as response:
            body: bytes = response.read()
            return body

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                return bool(response.status == 204)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGCONT)  # a paused server would not act on SIGTERM
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): requests hang, as with a stuck server, until `resume()`."""
        assert self._proc is not None, "influxd is not running"
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None, "influxd is not running"
        os.kill(self._proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

"""The local cloud in a process of its own: ``amibake local serve`` as a child process.

In-process, moto's request handling shares the interpreter (and its GIL) with whoever
started the cloud; the app's UI then competes with it while builds call the cloud. As a
child process it has its own, as AWS would be. :class:`LocalCloudProcess` offers what the
app uses of a :class:`~amibake.core.local.cloud.LocalCloud`: the endpoint, the SSH port,
the account, changing the latency profile, and stopping it. It never imports moto.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from amibake.core.errors import LocalCloudError
from amibake.core.local.account import DEFAULT_ACCOUNT

#: Loopback only, and never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalCloudProcess:
    """``amibake local serve`` started as a child; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        *,
        latency: str,
        instance_network: bool = False,
        ssh_port: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """``ssh_port`` and ``data_dir``: as ``local serve``'s options (default: its own)."""
        self.latency_name = latency
        self.instance_network = instance_network
        self.data_dir = data_dir
        self._ssh_port = ssh_port
        self.account_id = DEFAULT_ACCOUNT
        self.endpoint_url = ""
        self.ssh_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 120.0) -> LocalCloudProcess:
        """Start the process and wait until its endpoint answers (the banner names it)."""
        command = [
            sys.executable, "-m", "amibake.tui", "local", "serve",
            "--port", "0", "--latency", self.latency_name,
        ]  # fmt: skip
        if self.instance_network:
            command.append("--instance-network")
        if self._ssh_port is not None:
            command += ["--ssh-port", str(self._ssh_port)]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        # its output goes to a file: a pipe nobody reads would block it once full
        # (kept open as long as the process runs: closed by stop())
        self._log = tempfile.TemporaryFile(prefix="amibake-local-cloud-")  # noqa: SIM115
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while not self.endpoint_url:
            if self._process.poll() is not None:
                raise LocalCloudError(f"the local cloud's process ended: {self._last_line()}")
            if time.monotonic() > deadline:
                self.stop()
                raise LocalCloudError(f"the local cloud did not start within {timeout:g} s")
            self.endpoint_url = self._endpoint_in_banner()
            if not self.endpoint_url:
                time.sleep(0.05)  # the child is still building its catalogue
        self.ssh_port = int(self.status()["ssh_port"])
        return self

    def status(self) -> dict[str, Any]:
        """What ``GET /_amibake/status`` answers."""
        return self._control("GET", "status")

    def set_latency(self, profile: str) -> None:
        """The latency profile from now on (``PUT /_amibake/latency``)."""
        self._control("PUT", "latency", {"profile": profile})
        self.latency_name = profile

    def stop(self) -> None:
        """Stop the process (idempotent); what its instances ran is cleaned up by it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalCloudProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    def _output(self) -> str:
        assert self._log is not None
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _endpoint_in_banner(self) -> str:
        for line in self._output().splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "endpoint" and words[1].startswith("http://"):
                return words[1]
        return ""

    def _last_line(self) -> str:
        lines = [line for line in self._output().splitlines() if line.strip()]
        return lines[-1] if lines else "no output"

    def _control(self, method: str, name: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/_amibake/{name}", data=data, method=method
        )
        try:
            with _OPENER.open(request, timeout=30) as answer:
                result: dict[str, Any] = json.loads(answer.read())
        except (OSError, ValueError) as error:
            raise LocalCloudError(f"the local cloud did not answer {name}: {error}") from None
        return result

"""``python -m pixery_widgets.demo``: the simulator plus JupyterLab on the quick-start notebook.

The simulator runs as a child process; JupyterLab inherits SELFHOSTED_API_URL
pointing at it, so the panel finds a healthy "GPU server" without one. Both
stop together when JupyterLab does (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

NOTEBOOK = Path("notebooks") / "01-quickstart.ipynb"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"The simulator exited early (code {proc.returncode}).")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/health", timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"The simulator did not answer at {url} within {timeout:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="simulator port (default 8000)")
    parser.add_argument("--lab-port", type=int, default=8888, help="JupyterLab port")
    parser.add_argument("--gen-seconds", type=float, default=1.5, help="simulated drawing time")
    parser.add_argument("--no-lab", action="store_true", help="run only the simulator")
    args = parser.parse_args(argv)

    port = args.port if _port_free(args.port) else _free_port()
    if port != args.port:
        print(f"Port {args.port} is taken; the simulator uses {port} instead.")
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixery_widgets.sim",
            "--port",
            str(port),
            "--gen-seconds",
            str(args.gen_seconds),
        ],
    )
    try:
        _wait_healthy(url, sim)
        print(f"Simulated SDXL server: {url}  (SELFHOSTED_API_URL for the notebooks)")
        if args.no_lab:
            return sim.wait()
        env = {**os.environ, "SELFHOSTED_API_URL": url}
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            str(NOTEBOOK),
            f"--ServerApp.port={args.lab_port}",
            "--ServerApp.ip=127.0.0.1",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        with contextlib.suppress(KeyboardInterrupt):
            return subprocess.call(cmd, env=env)
        return 0
    finally:
        sim.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.wait(timeout=5)
        if sim.poll() is None:
            sim.kill()


if __name__ == "__main__":
    sys.exit(main())

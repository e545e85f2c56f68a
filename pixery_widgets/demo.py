"""``python -m pixery_widgets.demo``: the simulator plus JupyterLab on the quick-start notebook.

The simulator runs in this process, on background threads (``--servers N`` runs N
of them on consecutive ports, like a small farm of GPU boxes). JupyterLab inherits
SELFHOSTED_API_URL pointing at it (the URLs joined with commas), so the panel finds
a healthy "GPU server" without one. Both stop together when JupyterLab does (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path

from . import sim

if sim.MISSING_EXTRA is not None:  # said in a sentence, not a traceback
    sys.exit(sim.MISSING_EXTRA)

from .sim import SimConfig, SimPool
from .sim._pool import interrupt_event

#: The quick-start notebook: the repository's own when run from a clone, else the copy
#: the package carries, written into the working directory (a wheel has no notebooks/).
NOTEBOOK = Path("notebooks") / "01-quickstart.ipynb"
SHIPPED = Path(__file__).parent / "notebooks" / "01-quickstart.ipynb"


def quickstart_notebook(cwd: Path) -> Path:
    """The notebook JupyterLab opens: ``notebooks/01-quickstart.ipynb`` under ``cwd``,
    written there from the package's copy when it is not there yet."""
    target = cwd / NOTEBOOK
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(SHIPPED.read_bytes())
        print(f"Wrote the quick-start notebook to {target}.")
    return NOTEBOOK


def start_simulators(servers: int, port: int, gen_seconds: float) -> SimPool:
    """Serve on ``port`` and the next ones; on free ports instead when one is taken."""
    config = SimConfig(gen_seconds=gen_seconds)
    try:
        return SimPool(servers, config, port=port).start()
    except OSError:
        pool = SimPool(servers, config).start()
        taken = f"Port {port}" if servers == 1 else f"One of ports {port}-{port + servers - 1}"
        print(f"{taken} is taken; the simulator uses {', '.join(pool.urls)} instead.")
        return pool


def announce(pool: SimPool) -> None:
    for url in pool.urls:
        print(f"Simulated SDXL server: {url}")
    print(f"SELFHOSTED_API_URL={pool.selfhosted_api_url}  (for the notebooks)", flush=True)


def run_lab(url: str, lab_port: int) -> int:
    """JupyterLab on the quick-start notebook until it exits (or Ctrl-C)."""
    env = {**os.environ, "SELFHOSTED_API_URL": url}
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        str(quickstart_notebook(Path.cwd())),
        f"--ServerApp.port={lab_port}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.call(cmd, env=env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="simulator port (default 8000)")
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        metavar="N",
        help="simulated servers, on consecutive ports from --port (default 1)",
    )
    parser.add_argument("--lab-port", type=int, default=8888, help="JupyterLab port")
    parser.add_argument("--gen-seconds", type=float, default=1.5, help="simulated drawing time")
    parser.add_argument("--no-lab", action="store_true", help="run only the simulator")
    args = parser.parse_args(argv)
    if args.servers < 1:
        parser.error("--servers must be at least 1")
    simulators = (args.servers, args.port, args.gen_seconds)

    if args.no_lab:  # signals caught from the start: a script may stop us once it reads the URLs
        with interrupt_event() as interrupted, start_simulators(*simulators) as pool:
            announce(pool)
            pool.wait(interrupted)
        return 0
    with start_simulators(*simulators) as pool:
        announce(pool)
        return run_lab(pool.selfhosted_api_url, args.lab_port)


if __name__ == "__main__":
    sys.exit(main())

"""A pool of simulators: independent servers on consecutive ports, one process, over
real loopback HTTP; one can be stopped and brought back on its port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pixery_widgets.sim import Fault, FaultKind, SimConfig, SimPool

QUICK = {"gen_seconds": 0, "switch_seconds": 0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_consecutive(n: int, config: SimConfig, **options: Any) -> SimPool:
    """A started pool on n consecutive ports; retried, as another program may take one."""
    for _ in range(20):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            return SimPool(n, config, port=base, **options).start()
        except OSError:
            continue
    raise AssertionError("found no free consecutive ports")


@pytest.fixture
def pool() -> Iterator[SimPool]:
    """Three quick simulators on consecutive ports, stopped at teardown."""
    started = start_consecutive(3, SimConfig(**QUICK))
    yield started
    started.stop()


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health", timeout=5).json()  # type: ignore[no-any-return]


def refuses(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def generate(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/generate", json={"prompt": "a lighthouse", **body}, timeout=30)


# --- the pool in Python --------------------------------------------------------------


def test_three_servers_answer_on_consecutive_ports(pool: SimPool) -> None:
    ports = [server.port for server in pool.servers]
    assert ports == [ports[0], ports[0] + 1, ports[0] + 2]
    assert pool.urls == [f"http://127.0.0.1:{port}" for port in ports]
    assert pool.selfhosted_api_url == ",".join(pool.urls)
    assert len(pool) == 3 and list(pool) == pool.servers and pool[1] is pool.servers[1]
    assert pool.running == [True, True, True]
    assert [health(url)["status"] for url in pool.urls] == ["healthy"] * 3


def test_ports_are_numbered_from_the_given_one_before_the_pool_starts() -> None:
    assert SimPool(3, port=8000).urls == [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
    ]


def test_each_server_has_its_own_state(pool: SimPool) -> None:
    assert generate(pool.urls[1], model="pony").status_code == 200
    assert [health(url)["current_model"] for url in pool.urls] == ["animagine", "pony", "animagine"]
    assert [server.current_model for server in pool] == ["animagine", "pony", "animagine"]
    assert [sum(r.path == "/generate" for r in s.request_log) for s in pool] == [0, 1, 0]


def test_each_server_has_its_own_config_and_faults() -> None:
    once = Fault(FaultKind.STATUS_503, times=1)
    with SimPool(2, SimConfig(**QUICK, faults={"/models": once})) as pool:
        # A fault armed for one request fires once on each server, not once in all.
        assert [httpx.get(f"{url}/models").status_code for url in pool.urls] == [503, 503]
        assert [httpx.get(f"{url}/models").status_code for url in pool.urls] == [200, 200]
        httpx.post(f"{pool.urls[1]}/_sim/config", json={"loras": []})
        assert [httpx.get(f"{url}/loras").json()["loras"] == [] for url in pool.urls] == [
            False,
            True,
        ]
        pool[0].set_fault("/loras", "html_500")
        assert [httpx.get(f"{url}/loras").status_code for url in pool.urls] == [500, 200]
    assert once.times == 1  # the caller's config is left as it was


def test_start_loaded_names_are_dealt_out_in_turn() -> None:
    pool = SimPool(3, SimConfig(**QUICK), start_loaded=["pony", None])
    assert [server.config.start_loaded for server in pool] == ["pony", None, "pony"]
    with pool:
        assert [health(url)["current_model"] for url in pool.urls] == ["pony", None, "pony"]
    with pytest.raises(ValueError, match="start_loaded"):
        SimPool(2, start_loaded=["animagine", "no-such-model"])
    with pytest.raises(ValueError, match="at least one"):
        SimPool(0)


def test_stop_one_makes_its_port_refuse_and_start_brings_it_back_on_the_same_port(
    pool: SimPool,
) -> None:
    url = pool.urls[1]
    assert generate(url, model="noobai").status_code == 200
    pool.stop(1)
    assert refuses(url)
    assert pool.running == [True, False, True]
    assert [health(u)["status"] for u in (pool.urls[0], pool.urls[2])] == ["healthy"] * 2
    pool.start(1)
    assert pool.urls[1] == url and pool.running == [True, True, True]
    assert health(url)["current_model"] == "animagine"  # a fresh state, as after a reboot
    assert [r.path for r in pool[1].request_log].count("/generate") == 1  # the log is kept


def test_a_server_killed_mid_generation_drops_it_and_comes_back(pool: SimPool) -> None:
    pool[0].config.gen_seconds = 60
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(generate(pool.urls[0]).status_code)
        except httpx.TransportError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while not any(r.path == "/generate" for r in pool[0].request_log):
        assert time.monotonic() < deadline, "the generation never arrived"
        time.sleep(0.01)
    pool.kill(0)
    caller.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)
    assert refuses(pool.urls[0])
    pool[0].config.gen_seconds = 0
    pool.start(0)
    assert generate(pool.urls[0]).status_code == 200


def test_restart_and_a_second_start_are_harmless(pool: SimPool) -> None:
    ports = [server.port for server in pool]
    pool.start()  # every server already runs: nothing happens
    pool.restart(2)
    assert [server.port for server in pool] == ports
    assert [health(url)["status"] for url in pool.urls] == ["healthy"] * 3


def test_the_context_manager_stops_every_server() -> None:
    with SimPool(2, SimConfig(**QUICK)) as pool:
        urls = pool.urls
        assert all(health(url)["status"] == "healthy" for url in urls)
    assert all(refuses(url) for url in urls)
    assert pool.running == [False, False]


def test_a_taken_port_fails_the_pool_and_leaves_nothing_listening() -> None:
    for _ in range(20):
        base = free_port()
        try:
            blocker = socket.create_server(("127.0.0.1", base + 1))
        except OSError:
            continue
        break
    else:
        raise AssertionError("found no free port to block")
    with blocker:
        pool = SimPool(3, SimConfig(**QUICK), port=base)
        with pytest.raises(OSError):
            pool.start()
        assert pool.running == [False, False, False]
        assert refuses(f"http://127.0.0.1:{base}")


# --- the command line ----------------------------------------------------------------


def start_cli(*args: str, command: str = "pixery_widgets.sim") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until_api_url(process: subprocess.Popen[str]) -> list[str]:
    """The lines printed up to and with the SELFHOSTED_API_URL one."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or "SELFHOSTED_API_URL=" not in lines[-1]:
        line = process.stdout.readline()
        assert line, f"the process ended after: {lines}"
        lines.append(line.strip())
    return lines


def stop_cli(process: subprocess.Popen[str]) -> int:
    process.terminate()
    try:
        return process.wait(10)
    finally:
        process.kill()


def api_url(lines: list[str]) -> list[str]:
    return lines[-1].split("=", 1)[1].split()[0].split(",")


def test_the_cli_serves_two_independent_servers_on_free_ports() -> None:
    process = start_cli(
        *("--servers", "2", "--port", "0", "--gen-seconds", "0", "--switch-seconds", "0"),
        *("--start-model", "pony,noobai", "--no-loras", "--texture", "flat"),
    )
    try:
        lines = read_until_api_url(process)
        urls = [line.split()[-1] for line in lines if "serving on" in line]
        assert len(urls) == 2 and len(set(urls)) == 2
        assert api_url(lines) == urls
        assert [health(url)["current_model"] for url in urls] == ["pony", "noobai"]
        assert [httpx.get(f"{url}/loras").json() for url in urls] == [{"loras": []}] * 2
        assert generate(urls[0], model="animagine").status_code == 200
        assert [health(url)["current_model"] for url in urls] == ["animagine", "noobai"]
    finally:
        code = stop_cli(process)
    assert code == 0
    assert all(refuses(url) for url in urls)


def test_the_cli_stops_its_pool_on_ctrl_c() -> None:
    process = start_cli("--servers", "2", "--port", "0")
    try:
        urls = api_url(read_until_api_url(process))
        assert all(health(url)["status"] == "healthy" for url in urls)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        process.kill()


def test_the_cli_pool_exits_by_itself_when_every_server_is_idle() -> None:
    process = start_cli(
        "--servers", "2", "--port", "0", "--idle-timeout-minutes", "0.01", "--exit-when-idle"
    )
    try:
        read_until_api_url(process)
        assert process.wait(10) == 0
    finally:
        process.kill()


def test_the_cli_refuses_a_pool_of_no_servers_and_unknown_start_models() -> None:
    for args in (("--servers", "0"), ("--servers", "2", "--start-model", "pony,nope")):
        process = start_cli("--port", "0", *args)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 2, out


@pytest.mark.parametrize("servers", ["1", "2"])
def test_the_cli_says_so_when_a_port_is_taken(servers: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        process = start_cli("--servers", servers, "--port", str(taken.getsockname()[1]))
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "cannot listen" in out and "Traceback" not in out


def test_the_demo_without_lab_serves_a_pool_until_terminated() -> None:
    process = start_cli("--no-lab", "--servers", "2", "--port", "0", command="pixery_widgets.demo")
    try:
        urls = api_url(read_until_api_url(process))
        assert len(urls) == 2
        assert [health(url)["status"] for url in urls] == ["healthy"] * 2
    finally:
        code = stop_cli(process)
    assert code == 0
    assert all(refuses(url) for url in urls)

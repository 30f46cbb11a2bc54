"""The memcached fixtures: real servers, fault injection, clean state per test, nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import time

import psutil
import pytest

from pytest_concurrency.fixtures.memcached import MemcachedPool, MemcachedSettings, owned_pids
from pytest_concurrency.fixtures.memcached_server import (
    Connection,
    MemcachedError,
    MemcachedServer,
    PortTaken,
    find_memcached,
    parse_servers,
)
from pytest_concurrency.hygiene.processes import still_running

# Generous: the machine running this may be busy.
PATIENCE = 20.0


def answers(server) -> bool:
    try:
        with Connection(server.host, server.port, timeout=2.0) as connection:
            return connection.simple(b"version").startswith(b"VERSION")
    except OSError:
        return False


def refuses(server) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2.0)
        return probe.connect_ex((server.host, server.port)) != 0


def run_inner(pytester: pytest.Pytester, *args: str, timeout: float = 120) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=timeout)


# ---------------------------------------------------------------------------
# One server


def test_memcached_is_a_real_server_on_a_loopback_port(memcached):
    assert memcached.address == f"127.0.0.1:{memcached.port}"
    assert memcached.host == "127.0.0.1"
    assert memcached.command(b"set greeting 0 0 5\r\nhello") == b"STORED"
    assert memcached.get_raw("greeting") == (0, b"hello")
    assert memcached.holds(["greeting", "other"]) == {"greeting"}
    process = psutil.Process(memcached.pid)
    assert "memcached" in process.name()
    assert process.pid not in {child.pid for child in psutil.Process().children(recursive=True)}, (
        "the server must not be a child of the test process (leak checks would count it)"
    )


def test_stop_refuses_connections_and_start_comes_back_on_the_same_port_empty(memcached):
    port = memcached.port
    memcached.command(b"set k 0 0 1\r\nx")
    memcached.stop()
    assert not memcached.running
    assert refuses(memcached)
    memcached.start()
    assert memcached.port == port
    assert answers(memcached)
    assert memcached.get_raw("k") is None, "a restarted server starts empty"


def test_kill_is_abrupt_and_start_brings_it_back(memcached):
    pid = memcached.pid
    memcached.kill()
    assert still_running([pid], PATIENCE) == []
    assert refuses(memcached)
    memcached.start()
    assert answers(memcached)
    assert memcached.pid != pid


@pytest.mark.parametrize(("how", "times"), [("stop", 4), ("kill", 40)])  # SIGTERM takes up to 1 s
def test_the_port_is_free_as_soon_as_stop_or_kill_returns(memcached, how, times):
    # The main thread of memcached turns zombie before its other threads have
    # closed the listening socket: "gone" must mean every thread (was 13 in 150).
    for _ in range(times):
        getattr(memcached, how)()
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((memcached.host, memcached.port))
        memcached.start()


def test_a_frozen_server_accepts_connections_but_never_answers(memcached):
    memcached.freeze()
    try:
        with Connection(memcached.host, memcached.port, timeout=0.5) as connection, \
                pytest.raises(socket.timeout):
            connection.simple(b"version")
    finally:
        memcached.thaw()
    assert answers(memcached)


def test_freeze_returns_only_once_every_thread_of_the_server_has_stopped(memcached):
    # SIGSTOP is asynchronous: without waiting for it, a request sent right
    # after freeze() was occasionally still answered (1 run in 380).
    for _ in range(20):
        with Connection(memcached.host, memcached.port, timeout=2.0) as connection:
            memcached.freeze()
            connection.sock.settimeout(0.1)
            with pytest.raises(socket.timeout):
                connection.simple(b"version")
            memcached.thaw()


def test_ttl_and_stats_ask_the_server(memcached):
    memcached.command(b"set short 0 100 1\r\nx")
    memcached.command(b"set forever 0 0 1\r\nx")
    assert 90 <= memcached.ttl("short") <= 100
    assert memcached.ttl("forever") == -1
    assert memcached.ttl("missing") is None
    assert int(memcached.stats()["curr_connections"]) >= 1


# ---------------------------------------------------------------------------
# Clusters


def test_cluster_gives_distinct_running_servers(memcached_cluster, memcached):
    first, second = memcached_cluster(3), memcached_cluster(2)
    nodes = [*first, *second, memcached]
    assert len({node.port for node in nodes}) == 6, "every server of a test is its own"
    assert all(answers(node) for node in nodes)
    assert first.addresses == [node.address for node in first]


def test_cluster_holding_asks_each_node(memcached_cluster):
    cluster = memcached_cluster(2)
    cluster[1].command(b"set here 0 0 1\r\nx")
    assert cluster.holding("here") == [cluster[1]]
    cluster[1].kill()
    assert cluster.holding("here") == [], "a dead node holds nothing"


@pytest.mark.parametrize("bad", [0, -1, "2", 1.5, True])
def test_cluster_rejects_a_bad_size(memcached_cluster, bad):
    with pytest.raises(ValueError, match="number of servers"):
        memcached_cluster(bad)


# ---------------------------------------------------------------------------
# The pool: clean state per test, reuse, lost ports


def test_each_test_gets_running_empty_servers_even_after_a_test_killed_them(pytester):
    pytester.makepyfile(
        textwrap.dedent(
            """
            PORTS = []

            def test_dirty_everything(memcached_cluster):
                cluster = memcached_cluster(3)
                PORTS.append(sorted(n.port for n in cluster))
                for node in cluster:
                    node.command(b"set left 0 0 1\\r\\nx")
                cluster[0].kill()
                cluster[1].stop()
                cluster[2].freeze()

            def test_gets_clean_servers(memcached_cluster):
                cluster = memcached_cluster(3)
                assert sorted(n.port for n in cluster) == PORTS[0], "servers are reused"
                for node in cluster:
                    assert node.running and not node.frozen
                    assert node.get_raw("left") is None
            """
        )
    )
    result = run_inner(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_server_whose_port_was_taken_moves_to_another_port():
    pool = MemcachedPool(MemcachedSettings())
    try:
        [server] = pool.acquire(1)
        old_port = server.port
        server.stop()
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", old_port))
            squatter.listen()
            pool.release([server])
            [again] = pool.acquire(1)
            assert again is server
            assert server.port != old_port
            assert answers(server)
    finally:
        pool.close()


def test_starting_on_a_port_somebody_listens_on_is_port_taken():
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = MemcachedServer(find_memcached(None), port=squatter.getsockname()[1])
        with pytest.raises(PortTaken, match="in use"):
            server.start()
    assert not server.running


def test_a_binary_that_is_not_memcached_fails_clearly():
    server = MemcachedServer("/bin/false")
    with pytest.raises(MemcachedError, match="exited before answering"):
        server.start()


def test_owned_pids_lists_the_servers_and_the_watchdog(memcached):
    pids = owned_pids()
    assert memcached.pid in pids
    assert len(pids) >= 2, "the watchdog is owned too"


# ---------------------------------------------------------------------------
# Nothing outlives the session


PID_RECORDER = """
import os, signal

def test_record(memcached_cluster, request):
    from pytest_concurrency.fixtures.memcached import owned_pids
    memcached_cluster(2)
    with open({path!r}, "w") as out:
        out.write(" ".join(map(str, sorted(owned_pids()))))
    {ending}
"""


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param("pass", id="normal end"),
        pytest.param("assert False, 'a failing test'", id="failed test"),
        pytest.param("raise KeyboardInterrupt", id="Ctrl-C"),
        pytest.param("os.kill(os.getpid(), signal.SIGKILL)", id="SIGKILL"),
        pytest.param("os._exit(3)", id="os._exit"),
    ],
)
def test_no_server_outlives_the_session(pytester, ending):
    record = pytester.path / "pids.txt"
    pytester.makepyfile(PID_RECORDER.format(path=str(record), ending=ending))
    run_inner(pytester)
    pids = [int(pid) for pid in record.read_text().split()]
    assert len(pids) == 3, f"expected two servers and the watchdog, recorded {pids}"
    survivors = still_running(pids, PATIENCE)
    assert not survivors, f"still running after the session ended ({ending}): " + ", ".join(
        " ".join(psutil.Process(pid).cmdline()) for pid in survivors
    )


# ---------------------------------------------------------------------------
# Configuration and errors


MEMCACHED_TEST = """
def test_needs_memcached(memcached):
    pass

def test_needs_nothing():
    pass
"""


@pytest.mark.parametrize(
    ("how", "source"),
    [
        ("option", "--memcached-bin=/nonexistent"),
        ("ini", "memcached_bin = /nonexistent (ini, tox.ini)"),
        ("env", "PYTEST_MEMCACHED_BIN=/nonexistent (environment)"),
    ],
)
def test_a_missing_binary_says_how_to_install_memcached(pytester, monkeypatch, how, source):
    pytester.makepyfile(MEMCACHED_TEST)
    args = []
    if how == "option":
        args = ["--memcached-bin", "/nonexistent"]
    elif how == "ini":
        pytester.makeini("[pytest]\nmemcached_bin = /nonexistent\n")
    else:
        monkeypatch.setenv("PYTEST_MEMCACHED_BIN", "/nonexistent")
    result = run_inner(pytester, *args)
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    for expected in (f"{source}: no such file", "sudo apt-get install memcached",
                     "brew install memcached", "--memcached-servers", "PYTEST_MEMCACHED_SERVERS"):
        assert expected in output, f"{expected!r} missing from:\n{output}"
    assert "Traceback" not in output and "_memcached_server.py" not in output, output


@pytest.mark.parametrize(
    ("how", "source"),
    [
        ("option", "--memcached-servers=localhost"),
        ("ini", "memcached_servers = localhost (ini, tox.ini)"),
        ("env", "PYTEST_MEMCACHED_SERVERS=localhost (environment)"),
    ],
)
def test_a_bad_server_list_is_a_usage_error_naming_its_source(pytester, monkeypatch, how, source):
    pytester.makepyfile(MEMCACHED_TEST)
    args = []
    if how == "option":
        args = ["--memcached-servers=localhost"]
    elif how == "ini":
        pytester.makeini("[pytest]\nmemcached_servers = localhost\n")
    else:
        monkeypatch.setenv("PYTEST_MEMCACHED_SERVERS", "localhost")
    result = run_inner(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert (f"{source}: 'localhost' is not HOST:PORT; expected a comma-separated list of "
            "HOST:PORT, e.g. 127.0.0.1:11211") in errors, errors
    assert "Traceback" not in errors, errors


def test_parse_servers_reads_host_port_lists():
    assert parse_servers("127.0.0.1:1, [::1]:2,", "x") == [("127.0.0.1", 1), ("::1", 2)]


@pytest.mark.parametrize("bad", ["localhost", ":11211", "127.0.0.1:port", "127.0.0.1:70000",
                                 "127.0.0.1:0", " , ", ""])
def test_parse_servers_rejects_what_is_not_host_port(bad):
    with pytest.raises(ValueError, match=r"^--memcached-servers: .*127\.0\.0\.1:11211"):
        parse_servers(bad, "--memcached-servers")


EXTERNAL_TESTS = """
import pytest

def test_first(memcached):
    assert memcached.address == {address!r}
    memcached.command(b"set left 0 0 1\\r\\nx")

def test_second_sees_it_flushed(memcached):
    assert memcached.get_raw("left") is None

def test_fault_injection_is_skipped(memcached):
    memcached.kill()

def test_more_servers_than_given(memcached_cluster):
    memcached_cluster(2)
"""


def test_running_servers_given_with_memcached_servers_are_used_and_flushed(pytester, memcached):
    pytester.makepyfile(EXTERNAL_TESTS.format(address=memcached.address))
    result = run_inner(pytester, "-rs", f"--memcached-servers={memcached.address}")
    result.assert_outcomes(passed=2, skipped=1, failed=1)
    output = result.stdout.str()
    assert f"memcached: using {memcached.address} (--memcached-servers)" in output
    assert "only servers the plugin starts can be stopped" in output
    assert "needs more than the 1 memcached server(s) given with --memcached-servers" in output
    assert answers(memcached), "the external server must be left running"


def test_parallel_workers_never_share_a_server(pytester):
    pytester.makepyfile(
        textwrap.dedent(
            """
            import os
            import pytest

            @pytest.mark.parametrize("i", range(8))
            def test_claim(memcached_cluster, i):
                cluster = memcached_cluster(2)
                me = os.environ.get("PYTEST_XDIST_WORKER", "main").encode()
                for node in cluster:
                    assert node.command(b"add owner 0 0 %d\\r\\n%s" % (len(me), me)) == b"STORED"
            """
        )
    )
    result = run_inner(pytester, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=8)


@pytest.mark.skipif(sys.platform == "win32", reason="memcached does not run on Windows")
def test_the_watchdog_is_detached_and_ignores_ctrl_c(memcached):
    watchdog = [pid for pid in owned_pids() if "memcached" not in psutil.Process(pid).name()]
    assert watchdog
    for pid in watchdog:
        process = psutil.Process(pid)
        assert process.ppid() != os.getpid()
        os.kill(pid, signal.SIGINT)
    time.sleep(0.2)
    assert all(psutil.Process(pid).is_running() for pid in watchdog)

"""Real memcached servers for tests: start, stop, kill, freeze, and talk to them directly.

The fixtures in :mod:`pytest_concurrency.fixtures.memcached` hand these out;
this module knows nothing about pytest, so that it can be used (and tested)
on its own::

    watchdog = Watchdog()
    server = MemcachedServer(find_memcached(None), watchdog=watchdog)
    server.start()                 # a free loopback port, waits until it answers
    server.command(b"set k 0 0 1\\r\\nx")      # -> b"STORED"
    server.get_raw("k")            # -> (0, b"x"): asks the server itself, no client library
    server.kill()                  # SIGKILL: connections refused from now on
    server.start()                 # the same port again, empty
    server.stop(); watchdog.close()

The protocol helpers speak memcached's text protocol over a plain socket, so
that a test can check what a server really holds without trusting the client
under test.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import psutil

LOOPBACK = "127.0.0.1"

# Generous: a loaded CI machine with two cores may take a while to exec memcached.
STARTUP_PATIENCE = 20.0
SHUTDOWN_PATIENCE = 10.0
REPLY_TIMEOUT = 10.0

BIN_ENV = "PYTEST_MEMCACHED_BIN"
SERVERS_ENV = "PYTEST_MEMCACHED_SERVERS"

# Where package managers put memcached when PATH does not say.
_USUAL_PLACES = (
    "/usr/bin/memcached",
    "/usr/local/bin/memcached",
    "/opt/homebrew/bin/memcached",
    "/usr/sbin/memcached",
    "/opt/local/bin/memcached",
)

INSTALL_HELP = f"""\
Install memcached, or point the tests at servers that already run:
  Debian/Ubuntu:  sudo apt-get install memcached
  macOS:          brew install memcached
  Fedora/RHEL:    sudo dnf install memcached
  elsewhere:      pytest --memcached-bin /path/to/memcached  (or set {BIN_ENV})
  CI:             run memcached as a service container (image memcached:1.6, port 11211)
                  and pass --memcached-servers 127.0.0.1:11211  (or set {SERVERS_ENV})"""


class MemcachedError(Exception):
    """A memcached server could not be found, started, or did not answer as expected."""


class MemcachedNotFound(MemcachedError):
    """No memcached binary: the message says how to install one."""


class PortTaken(MemcachedError):
    """Somebody else listens on the port a server wanted."""


def find_memcached(explicit: str | None, source: str = "--memcached-bin") -> str:
    """The memcached binary to run: ``explicit`` if given (from ``source``), else the usual places.

    >>> find_memcached("/nonexistent", "--memcached-bin")
    Traceback (most recent call last):
    MemcachedNotFound: --memcached-bin /nonexistent: no such file...
    """
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            raise MemcachedNotFound(f"{source} {explicit}: is a folder, not the memcached program\n{INSTALL_HELP}")
        if not path.exists():
            raise MemcachedNotFound(f"{source} {explicit}: no such file\n{INSTALL_HELP}")
        if not os.access(path, os.X_OK):
            raise MemcachedNotFound(f"{source} {explicit}: not executable\n{INSTALL_HELP}")
        return str(path)
    found = shutil.which("memcached")
    if found:
        return found
    for candidate in _USUAL_PLACES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise MemcachedNotFound(
        "memcached is not installed: it is not on PATH nor in "
        f"{', '.join(_USUAL_PLACES)}\n{INSTALL_HELP}"
    )


def parse_servers(text: str, source: str) -> list[tuple[str, int]]:
    """``"h1:11211,h2:11212"`` -> ``[("h1", 11211), ("h2", 11212)]``; bad text names ``source``.

    >>> parse_servers("127.0.0.1:11211, localhost:11212", "--memcached-servers")
    [('127.0.0.1', 11211), ('localhost', 11212)]
    """
    servers = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        host, sep, port_text = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(
                f"{source}: {item!r} is not HOST:PORT (e.g. 127.0.0.1:11211); "
                f"expected a comma-separated list, got {text!r}"
            )
        servers.append((host, int(port_text)))
    if not servers:
        raise ValueError(f"{source}: no server given, got {text!r}; expected e.g. 127.0.0.1:11211")
    return servers


# ---------------------------------------------------------------------------
# Talking to a server directly


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise MemcachedError("the server closed the connection")
        self.buffer += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


class Connection:
    """One text-protocol connection to a server, for checks and housekeeping."""

    def __init__(self, host: str, port: int, timeout: float = REPLY_TIMEOUT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = _Reader(self.sock)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def simple(self, request: bytes) -> bytes:
        """Send one request whose reply is one line; return that line."""
        self.sock.sendall(request + b"\r\n")
        return self.reader.line()

    def get(self, key: str) -> tuple[int, bytes] | None:
        """(flags, data) of ``key``, or None when the server does not hold it."""
        self.sock.sendall(b"get " + key.encode() + b"\r\n")
        found = None
        while (line := self.reader.line()) != b"END":
            parts = line.split()
            if parts[:1] != [b"VALUE"] or len(parts) < 4:
                raise MemcachedError(f"unexpected reply to get {key}: {line!r}")
            data = self.reader.exactly(int(parts[3]) + 2)[:-2]
            found = (int(parts[2]), data)
        return found

    def stats(self) -> dict[str, str]:
        self.sock.sendall(b"stats\r\n")
        stats = {}
        while (line := self.reader.line()) != b"END":
            _, name, value = line.decode().split(" ", 2)
            stats[name] = value
        return stats


# ---------------------------------------------------------------------------
# The watchdog: no server outlives the session


def _thread_states(process: psutil.Process) -> list[str] | None:
    """The state letter of each thread (``R``, ``S``, ``T``, ``Z``…), or None without procfs."""
    tasks = Path(f"/proc/{process.pid}/task")
    if not tasks.is_dir():
        return None
    states = []
    for stat in tasks.glob("*/stat"):
        try:
            states.append(stat.read_text().rpartition(")")[2].split()[0])
        except (OSError, IndexError):
            continue  # that thread just ended
    return states


def _alive(process: psutil.Process) -> bool:
    """Still holding its sockets: not gone, and not only a zombie waiting for a parent.

    A multi-threaded process's main thread turns zombie while the other
    threads still exit, and the listening socket is closed only when the last
    one has: every thread must be a zombie (or gone) for the port to be free.
    """
    try:
        if not process.is_running():
            return False
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    states = _thread_states(process)
    return bool(states) and any(state not in ("Z", "X", "x") for state in states)


def _all_threads_stopped(process: psutil.Process) -> bool:
    """Every thread of ``process`` is stopped by a signal (or the process is gone)."""
    states = _thread_states(process)
    if states is None:  # no procfs (macOS): the process state is all we can see
        try:
            return process.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return True
    return all(state in ("T", "t") for state in states)


class Watchdog:
    """One helper process per session that kills every watched server when the session dies.

    The session holds the only write end of the watchdog's stdin; when the
    session ends in any way (also SIGKILL), the pipe closes and the watchdog
    kills what it was told to watch.
    """

    SCRIPT = Path(__file__).with_name("_memcached_watchdog.py")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: IO[bytes] | None = None
        self._process: psutil.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _start(self) -> None:
        launcher = subprocess.Popen(
            [sys.executable, "-u", str(self.SCRIPT)],
            # Not our stderr: whoever reads the session's output must see it end with the session.
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C must not reach it
        )
        assert launcher.stdin is not None and launcher.stdout is not None
        # The script forks and its first process exits: the watchdog is nobody's child here.
        pid_text = launcher.stdout.readline().decode().strip()
        launcher.stdout.close()
        launcher.wait(STARTUP_PATIENCE)
        if not pid_text.isdigit():
            launcher.stdin.close()
            raise MemcachedError(f"the memcached watchdog did not start (it said {pid_text!r})")
        self._pipe = launcher.stdin
        self._process = psutil.Process(int(pid_text))

    def _send(self, line: str) -> None:
        with self._lock:
            if self._pipe is None:
                self._start()
            assert self._pipe is not None
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()

    def watch(self, pid: int) -> None:
        self._send(f"watch {pid}")

    def forget(self, pid: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._send(f"forget {pid}")

    def close(self) -> None:
        """Close the pipe: the watchdog kills what is still watched and exits."""
        with self._lock:
            pipe, process, self._pipe, self._process = self._pipe, self._process, None, None
        if pipe is None or process is None:
            return
        with contextlib.suppress(OSError):
            pipe.close()
        deadline = time.monotonic() + SHUTDOWN_PATIENCE
        while _alive(process) and time.monotonic() < deadline:
            time.sleep(0.005)


# ---------------------------------------------------------------------------
# A server


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # the IANA range, used by macOS and BSDs


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on, outside the range the kernel gives outgoing connections.

    Outside that range, a client's own connection can never hold the port
    while a stopped server waits to start on it again.
    """
    low, _ = _ephemeral_range()
    first, last = 20000, min(low, 32768) - 1
    for _ in range(200):
        port = random.randint(first, last) if last > first else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise MemcachedError(f"no free port on {host} between {first} and {last}")


# Started by a shell that exits at once: the server is nobody's child in this
# session (a per-test check for leaked child processes must not see servers
# that outlive tests on purpose), in its own session (Ctrl-C is for pytest),
# and the watchdog kills it if pytest dies.
_DETACH = '"$@" </dev/null >"$0" 2>&1 & echo $!'


def _launch_detached(command: list[str], log: Path) -> psutil.Process:
    """Start ``command`` detached from this process; its output goes to ``log``."""
    launcher = subprocess.run(
        ["/bin/sh", "-c", _DETACH, str(log), *command],
        capture_output=True, start_new_session=True,
        timeout=STARTUP_PATIENCE, check=False,
    )
    pid_text = launcher.stdout.decode().strip()
    if launcher.returncode != 0 or not pid_text.isdigit():
        raise MemcachedError(
            f"could not start {command[0]}: {launcher.stderr.decode(errors='replace').strip()}"
        )
    try:
        return psutil.Process(int(pid_text))
    except psutil.NoSuchProcess:
        # Exited already: a Process that says so, for the caller's error message.
        raise MemcachedError(f"{command[0]} exited before answering: {_read(log)}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip() or "it said nothing"
    except OSError:
        return "it said nothing"


class MemcachedServer:
    """A real ``memcached`` process listening on one loopback port.

    ``start()`` waits until it answers; ``stop()`` ends it gracefully (SIGTERM),
    ``kill()`` abruptly (SIGKILL); ``start()`` again uses the same port.
    ``freeze()`` suspends it (SIGSTOP): connections are accepted by the kernel
    but nothing is ever answered, a server that hangs; ``thaw()`` resumes it.
    """

    host = LOOPBACK

    def __init__(self, binary: str, port: int | None = None, *, watchdog: Watchdog | None = None,
                 memory_mb: int = 64) -> None:
        self.binary = binary
        self.port = port if port is not None else free_port()
        self.watchdog = watchdog
        self.memory_mb = memory_mb
        self._process: psutil.Process | None = None
        self._frozen = False
        self._lock = threading.RLock()

    @property
    def _log(self) -> Path:
        return Path(tempfile.gettempdir(), f"pytest-memcached-{os.getpid()}-{self.port}.log")

    def move_to_free_port(self) -> None:
        """Listen on another free port from the next start() on (the old one was taken)."""
        with self._lock:
            if self.running:
                raise MemcachedError(f"cannot move {self.address}: it is running")
            self.port = free_port()

    def __repr__(self) -> str:
        state = "frozen" if self._frozen else "running" if self.running else "stopped"
        return f"<memcached {self.address} {state}>"

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, as a client's server list wants it."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """True while the process lives (also when frozen)."""
        return self._process is not None and _alive(self._process)

    @property
    def frozen(self) -> bool:
        return self._frozen and self.running

    def _command_line(self) -> list[str]:
        command = [self.binary, "-l", self.host, "-p", str(self.port), "-U", "0",
                   "-m", str(self.memory_mb), "-c", "1024", "-t", "2"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command += ["-u", "root"]  # memcached refuses to run as root without it
        return command

    def start(self) -> None:
        """Start the server on its port (again) and wait until it answers. No-op if running."""
        with self._lock:
            if self.running:
                self.thaw()
                return
            self._process = _launch_detached(self._command_line(), self._log)
            self._frozen = False
            if self.watchdog is not None:
                self.watchdog.watch(self._process.pid)
            self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_PATIENCE
        while True:
            if not self.running:
                said = _read(self._log)
                self._forget()
                if "in use" in said:
                    raise PortTaken(f"memcached could not listen on {self.address}: {said}")
                raise MemcachedError(
                    f"memcached ({' '.join(self._command_line())}) exited before answering: {said}"
                )
            try:
                with Connection(self.host, self.port, timeout=1.0) as connection:
                    if connection.simple(b"version").startswith(b"VERSION"):
                        return
            except (OSError, MemcachedError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise MemcachedError(
                    f"memcached on {self.address} did not answer within {STARTUP_PATIENCE:g} s"
                )
            time.sleep(0.01)

    def _forget(self) -> None:
        if self.watchdog is not None and self._process is not None:
            self.watchdog.forget(self._process.pid)
        with contextlib.suppress(OSError):
            self._log.unlink()

    def _signal(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            self._process.send_signal(signum)

    def _wait_gone(self, patience: float) -> bool:
        deadline = time.monotonic() + patience
        while self.running:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self) -> None:
        """End the server gracefully (SIGTERM) and wait until it is gone. No-op if not running."""
        with self._lock:
            if not self.running:
                return
            self._signal(signal.SIGTERM)
            if self._frozen:
                self._signal(signal.SIGCONT)  # a stopped process acts on SIGTERM only once resumed
            if not self._wait_gone(SHUTDOWN_PATIENCE):
                self._signal(signal.SIGKILL)
                self._wait_gone(SHUTDOWN_PATIENCE)
            self._frozen = False
            self._forget()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), like a crash. No-op if not running."""
        with self._lock:
            if not self.running:
                return
            self._signal(signal.SIGKILL)
            self._wait_gone(SHUTDOWN_PATIENCE)
            self._frozen = False
            self._forget()

    def freeze(self) -> None:
        """Suspend the server (SIGSTOP): it accepts connections but never answers."""
        with self._lock:
            if not self.running:
                raise MemcachedError(f"cannot freeze {self.address}: it is not running")
            self._signal(signal.SIGSTOP)
            self._frozen = True
            # SIGSTOP is delivered asynchronously: a thread busy on another core
            # could still answer one more request unless we wait for it to stop.
            deadline = time.monotonic() + SHUTDOWN_PATIENCE
            while not _all_threads_stopped(self._process):
                if time.monotonic() > deadline:
                    raise MemcachedError(f"{self.address} did not stop on SIGSTOP")
                time.sleep(0.001)

    def thaw(self) -> None:
        """Resume a frozen server. No-op if it is not frozen."""
        with self._lock:
            if self._frozen and self.running:
                self._signal(signal.SIGCONT)
            self._frozen = False

    # -- direct checks -----------------------------------------------------

    def connect(self, timeout: float = REPLY_TIMEOUT) -> Connection:
        return Connection(self.host, self.port, timeout)

    def command(self, request: bytes) -> bytes:
        """Send one request with a one-line reply (set, delete, incr, flush_all, mg, …)."""
        with self.connect() as connection:
            return connection.simple(request)

    def flush(self) -> None:
        """Forget every item (``flush_all``)."""
        reply = self.command(b"flush_all")
        if reply != b"OK":
            raise MemcachedError(f"flush_all on {self.address} answered {reply!r}")

    def stats(self) -> dict[str, str]:
        """The server's ``stats``, e.g. ``stats()["curr_connections"]``."""
        with self.connect() as connection:
            return connection.stats()

    def get_raw(self, key: str) -> tuple[int, bytes] | None:
        """(flags, bytes) this server holds under ``key``, or None."""
        with self.connect() as connection:
            return connection.get(key)

    def holds(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` this server holds."""
        with self.connect() as connection:
            return {key for key in keys if connection.get(key) is not None}

    def ttl(self, key: str) -> int | None:
        """Seconds ``key`` has left (-1: never expires), or None when not held. Needs memcached ≥ 1.6."""
        reply = self.command(b"mg " + key.encode() + b" t")
        if reply.startswith(b"EN"):
            return None
        for flag in reply.split()[1:]:
            if flag.startswith(b"t"):
                return int(flag[1:])
        raise MemcachedError(f"{self.address} answered {reply!r} to a meta get (memcached ≥ 1.6 needed)")


class ExternalServer(MemcachedServer):
    """A server that runs already (``--memcached-servers``): usable, but not ours to stop."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.binary = ""
        self.watchdog = None
        self._process = None
        self._frozen = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<memcached {self.address} external>"

    @property
    def running(self) -> bool:
        return True

    def _refuse(self, action: str) -> None:
        raise MemcachedError(
            f"cannot {action} {self.address}: it was given with --memcached-servers, and only "
            "servers the plugin starts itself can be stopped, killed or frozen"
        )

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._refuse("stop")

    def kill(self) -> None:
        self._refuse("kill")

    def freeze(self) -> None:
        self._refuse("freeze")

    def thaw(self) -> None:
        pass

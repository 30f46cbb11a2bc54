"""Exercise 18, the reference solution: a memcached client for a cluster of servers.

The course text's wrapper stored everything under the key "name"; this one
uses the caller's keys, spreads them over the servers by consistent hashing
(pymemcache's ``HashClient``, rendezvous hashing), survives servers that die,
and is safe to share between threads.
"""

from __future__ import annotations

import time
import uuid

from pymemcache.client.hash import HashClient
from pymemcache.serde import pickle_serde

# Loopback servers answer in microseconds; a server that takes this long is
# treated as down, so that no call can hang on a server that stopped answering.
CONNECT_TIMEOUT = 2.0
TIMEOUT = 5.0

# get_or_set: how long the computing thread may hold the lock (if it dies, the
# lock expires), and how long the others wait for its value before computing
# it themselves.
LOCK_SECONDS = 30
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.005

# incr: a missing key is created with add(); if another client created it at
# the same moment, incr again.  A few rounds always suffice unless servers fail.
INCR_ATTEMPTS = 10

_MISSING = object()


class MemcachedClient:
    def __init__(self, servers: list[str]) -> None:
        self._client = HashClient(
            [_parse(server) for server in servers],
            serde=pickle_serde,  # any picklable value; str, int and bytes stay readable
            connect_timeout=CONNECT_TIMEOUT,
            timeout=TIMEOUT,
            use_pooling=True,  # one connection per thread at a time: safe to share
            ignore_exc=True,  # a dead server answers with the default instead of raising
            default_noreply=False,  # wait for the answer: set/delete report what happened
            retry_attempts=2,
            retry_timeout=1,
            dead_timeout=10,
        )

    def set(self, key: str, value, expire: int = 0) -> bool:
        return bool(self._client.set(key, value, expire=expire))

    def get(self, key: str, default=None):
        return self._client.get(key, default=default)

    def delete(self, key: str) -> bool:
        return bool(self._client.delete(key))

    def incr(self, key: str, delta: int = 1) -> int:
        if delta < 0:
            raise ValueError(f"incr: delta must be ≥ 0, got {delta}")
        for _ in range(INCR_ATTEMPTS):
            value = self._client.incr(key, delta)
            if value is False:
                break  # the server is down
            if value is not None:
                return int(value)
            # Missing: create it, unless someone else does it first.
            if self._client.add(key, delta):
                return delta
        raise ConnectionError(f"incr {key!r}: the memcached server holding it does not answer")

    def get_or_set(self, key: str, compute, expire: int = 0):
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        lock_key = f"{key}:lock"
        token = uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_SECONDS
        lock_unseen = 0
        while time.monotonic() < deadline and lock_unseen < 3:
            if self._client.add(lock_key, token, expire=LOCK_SECONDS):
                try:
                    # Someone may have stored it between our miss and our lock.
                    value = self.get(key, _MISSING)
                    if value is _MISSING:
                        value = compute()
                        self.set(key, value, expire)
                    return value
                finally:
                    self._client.delete(lock_key)
            value = self.get(key, _MISSING)
            if value is not _MISSING:
                return value
            # add() failed, yet nobody holds the lock: its server is down.
            lock_unseen = lock_unseen + 1 if self.get(lock_key, _MISSING) is _MISSING else 0
            time.sleep(POLL_SECONDS)
        # The lock holder never delivered, or the lock's server is down: do it ourselves.
        return compute()

    def close(self) -> None:
        self._client.close()


def _parse(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"server {server!r} is not HOST:PORT")
    return host, int(port)

"""get_or_set takes a threading.Lock of its own client: other clients still compute too.

A lock inside one client object cannot stop other clients (other
processes, other machines): the lock must live in memcached (add).
"""

import threading

from pymemcache.client.hash import HashClient
from pymemcache.serde import pickle_serde

CAUGHT_BY = ["test_get_or_set_computes_once_when_many_threads_miss_together"]


_MISSING = object()


class MemcachedClient:
    def __init__(self, servers):
        self._lock = threading.Lock()
        self._client = HashClient(
            [(s.rpartition(":")[0], int(s.rpartition(":")[2])) for s in servers],
            serde=pickle_serde,
            connect_timeout=2,
            timeout=3,
            use_pooling=True,
            ignore_exc=True,
            default_noreply=False,
        )

    def set(self, key, value, expire=0):
        return bool(self._client.set(key, value, expire=expire))

    def get(self, key, default=None):
        return self._client.get(key, default=default)

    def delete(self, key):
        return bool(self._client.delete(key))

    def incr(self, key, delta=1):
        for _ in range(10):
            value = self._client.incr(key, delta)
            if value is not None and value is not False:
                return int(value)
            if self._client.add(key, delta):
                return delta
        raise ConnectionError(key)

    def get_or_set(self, key, compute, expire=0):
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        with self._lock:
            value = self.get(key, _MISSING)
            if value is _MISSING:
                value = compute()
                self.set(key, value, expire)
            return value

    def close(self):
        self._client.close()

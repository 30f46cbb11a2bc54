"""Keys placed with Python's hash(key) % number of servers.

hash() of a str differs between processes (PYTHONHASHSEED), so another
process looks for a key on the wrong server, and adding a server moves most keys.
"""

import time
import uuid

from pymemcache.client.hash import HashClient
from pymemcache.serde import pickle_serde

CAUGHT_BY = ["test_clients_in_other_processes_find_the_same_keys", "test_adding_a_server_keeps_most_keys_where_they_were"]


class ModuloHash:
    def __init__(self):
        self.nodes = []

    def add_node(self, node):
        self.nodes.append(node)

    def remove_node(self, node):
        self.nodes.remove(node)

    def get_node(self, key):
        if not self.nodes:
            return None
        if isinstance(key, bytes):
            key = key.decode()
        return self.nodes[hash(key) % len(self.nodes)]


_MISSING = object()


class MemcachedClient:
    def __init__(self, servers):
        self._client = HashClient(
            [(s.rpartition(":")[0], int(s.rpartition(":")[2])) for s in servers],
            serde=pickle_serde,
            hasher=ModuloHash,
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
        lock_key = key + ":lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._client.add(lock_key, uuid.uuid4().hex, expire=30):
                try:
                    value = self.get(key, _MISSING)
                    if value is _MISSING:
                        value = compute()
                        self.set(key, value, expire)
                    return value
                finally:
                    self._client.delete(lock_key)
            time.sleep(0.005)
            value = self.get(key, _MISSING)
            if value is not _MISSING:
                return value
        return compute()

    def close(self):
        self._client.close()

"""Exercise 18: a memcached client for a cluster of servers. Read README.md in this folder first.

Build it on pymemcache (``from pymemcache.client.hash import HashClient``).
The course text's wrapper, for comparison (do not copy its bug)::

    class Cache:
        def __init__(self, servers):
            self.mc = HashClient(servers)
        def set(self, key, value):
            self.mc.set("name", value)      # every call uses the key "name"
        def get(self, key):
            return self.mc.get("name")
"""

from __future__ import annotations

_README = "exercises/18_memcached_client/README.md"


class MemcachedClient:
    def __init__(self, servers: list[str]) -> None:
        raise NotImplementedError(f"MemcachedClient.__init__: write it (see {_README})")

    def set(self, key: str, value, expire: int = 0) -> bool:
        raise NotImplementedError(f"MemcachedClient.set: write it (see {_README})")

    def get(self, key: str, default=None):
        raise NotImplementedError(f"MemcachedClient.get: write it (see {_README})")

    def delete(self, key: str) -> bool:
        raise NotImplementedError(f"MemcachedClient.delete: write it (see {_README})")

    def incr(self, key: str, delta: int = 1) -> int:
        raise NotImplementedError(f"MemcachedClient.incr: write it (see {_README})")

    def get_or_set(self, key: str, compute, expire: int = 0):
        raise NotImplementedError(f"MemcachedClient.get_or_set: write it (see {_README})")

    def close(self) -> None:
        raise NotImplementedError(f"MemcachedClient.close: write it (see {_README})")

"""A bounded cache of what was made from one object, holding that object (as toolong's line caches hold
the lines they key).

A key made of ``id(obj)`` alone is reused once the object is freed, and a cache that keeps the object
alive defeats whatever meant to free it. ``HeldCache`` keys each value by the object's identity and a
stable spec, holds the object beside the value (so the identity cannot be reused while the entry lives),
drops the least recently used entry beyond ``size``, and forgets every entry of an object on request:
the app forgets an analysis when the session drops it (``Session.keep``), so the cache never holds more
analyses than the session does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class HeldCache(Generic[V]):
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a cache holds at least one entry, not {size}")
        self.size = size
        self._entries: OrderedDict[tuple[int, Hashable], tuple[object, V]] = OrderedDict()

    def get(self, owner: object, spec: Hashable, make: Callable[[], V]) -> V:
        """The value of ``(owner, spec)``, made by ``make`` on a miss."""
        key = (id(owner), spec)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is owner:
            self._entries.move_to_end(key)
            return hit[1]
        value = make()
        self._entries[key] = (owner, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def forget(self, owner: object | None = None) -> None:
        """Drop every entry of ``owner`` (all entries with no owner named)."""
        if owner is None:
            self._entries.clear()
            return
        for key in [k for k, (held, _) in self._entries.items() if held is owner]:
            del self._entries[key]

    def held(self) -> set[int]:
        """The identities of the objects the cache keeps alive."""
        return {id(held) for held, _ in self._entries.values()}

    def __len__(self) -> int:
        return len(self._entries)

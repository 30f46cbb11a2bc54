"""ABA on a compare-and-set stack: a popped node pushed back makes a stale CAS succeed."""

from __future__ import annotations

import threading


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.next: Node | None = None


class Reference:
    """A compare-and-set cell: compares the node only (the ABA-prone kind)."""

    def __init__(self, value: Node | None) -> None:
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> tuple[Node | None, int]:
        return self._value, 0

    def compare_and_set(self, expected: tuple[Node | None, int], new: Node | None) -> bool:
        with self._lock:
            if self._value is not expected[0]:
                return False
            self._value = new
            return True


class StampedReference(Reference):
    """Compares the node and a stamp bumped on every change, so A-B-A is seen."""

    def __init__(self, value: Node | None) -> None:
        super().__init__(value)
        self._stamp = 0

    def get(self) -> tuple[Node | None, int]:
        with self._lock:
            return self._value, self._stamp

    def compare_and_set(self, expected: tuple[Node | None, int], new: Node | None) -> bool:
        with self._lock:
            if (self._value, self._stamp) != expected:
                return False
            self._value = new
            self._stamp += 1
            return True


class Stack:
    def __init__(self, top: Reference) -> None:
        self.top = top

    def push(self, node: Node) -> None:
        while True:
            seen = self.top.get()
            node.next = seen[0]
            if self.top.compare_and_set(seen, node):
                return

    def pop(self) -> Node | None:
        while True:
            seen = self.top.get()
            node = seen[0]
            if node is None:
                return None
            if self.top.compare_and_set(seen, node.next):
                return node


def _scenario(schedule, reference: type[Reference]) -> None:
    a, b, c = Node("A"), Node("B"), Node("C")
    a.next, b.next = b, c
    stack = Stack(reference(a))

    def pop_one() -> list[Node | None]:
        return [stack.pop()]

    def pop_two_push_first_back() -> list[Node | None]:
        first, second = stack.pop(), stack.pop()
        assert first is not None
        stack.push(first)  # the node is reused: A comes back on top
        return [second]

    held_by_1, held_by_2 = schedule.run(pop_one, pop_two_push_first_back)
    left = []
    node = stack.top.get()[0]
    while node is not None and len(left) < 5:
        left.append(node.name)
        node = node.next
    held = [n.name for n in held_by_1 + held_by_2 if n is not None]
    assert sorted(held + left) == ["A", "B", "C"], f"stack {left}, threads hold {held}"


def buggy(schedule) -> None:
    _scenario(schedule, Reference)


def fixed(schedule) -> None:
    _scenario(schedule, StampedReference)

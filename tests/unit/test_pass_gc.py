"""Passes pause Python's cyclic garbage collector; overlapping passes (several clouds
collected at once) resume it only when the last one ends."""

from __future__ import annotations

import gc
import time
import weakref

from stackfleet.engine.collect import cyclic_gc_paused


def test_collector_resumes_when_the_last_of_overlapping_passes_ends():
    first, second = cyclic_gc_paused(), cyclic_gc_paused()
    try:
        first.__enter__()
        second.__enter__()
        assert not gc.isenabled()
        first.__exit__(None, None, None)
        assert not gc.isenabled()
        second.__exit__(None, None, None)
        assert gc.isenabled()
    finally:
        gc.enable()


def test_collector_switched_off_before_a_pass_stays_off():
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collector_resumes_after_a_pass_that_raised():
    try:
        with cyclic_gc_paused():
            raise RuntimeError("listing blew up")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_a_pass_first_collects_the_cycles_earlier_passes_left(monkeypatch):
    from stackfleet.engine import collect

    class Closed:
        """Stands for a closed connection: unreachable, but in a reference cycle."""

    garbage = Closed()
    garbage.me = garbage  # type: ignore[attr-defined]
    left = weakref.ref(garbage)
    del garbage
    monkeypatch.setattr(collect, "_last_full_collection", 0.0)
    with cyclic_gc_paused():
        assert left() is None


def test_full_collections_are_at_most_one_a_minute(monkeypatch):
    from stackfleet.engine import collect

    monkeypatch.setattr(collect, "_last_full_collection", time.monotonic())
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)
    for _ in range(3):
        with cyclic_gc_paused():
            pass
    assert collections == []

"""Passes pause Python's cyclic garbage collector; overlapping passes (several clouds
collected at once) resume it only when the last one ends."""

from __future__ import annotations

import gc

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

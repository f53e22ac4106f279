"""How the simulator's asynchronous services (Ironic's deploys and teardowns, Zun's
containers) step a resource from state to state: at once, or each step after
`Simulator.action_delay` seconds on the event loop, under the state lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def action_delay(sim: Any) -> float:
    """The seconds each step lasts (0: steps complete at once)."""
    try:
        return max(0.0, float(getattr(sim, "action_delay", 0.0) or 0.0))
    except (TypeError, ValueError):
        return 0.0


def later(sim: Any, step: Callable[[], None]) -> None:
    """Run `step` now, or after the action delay holding the simulator's state lock."""
    delay = action_delay(sim)
    if delay <= 0:
        step()
        return

    def locked() -> None:
        with sim.state.lock:
            step()

    asyncio.get_running_loop().call_later(delay, locked)

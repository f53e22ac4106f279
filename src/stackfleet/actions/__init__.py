"""Actions on OpenStack resources, one module per target service, registered by name
in ACTIONS. Importing this package registers every built-in action."""

from stackfleet.actions import (  # noqa: F401
    block_storage,
    compute,
    compute_service,
    fence,
    leases,
    maintenance,
    network,
    notify,
)
from stackfleet.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Skip,
)

__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "ActionError",
    "Change",
    "Outcome",
    "Plan",
    "Skip",
]

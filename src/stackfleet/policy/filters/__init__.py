"""Policy filters, each registered by its `type` name in FILTERS. Importing this
package registers every built-in filter."""

from stackfleet.policy.filters import (  # noqa: F401 - imported to register
    age,
    capacity,
    core,
    metric,
    network,
    ownership,
    placement,
    relation,
    tags,
)
from stackfleet.policy.filters.base import (
    FILTERS,
    Filter,
    Predicate,
    compile_all,
    parse_filter,
    parse_filters,
    reads_all,
)

__all__ = [
    "FILTERS",
    "Filter",
    "Predicate",
    "compile_all",
    "parse_filter",
    "parse_filters",
    "reads_all",
]

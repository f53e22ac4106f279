"""Hardware over Redfish: which BMC belongs to which host, and reading them with sushy."""

from stackfleet.sources.redfish.bmc_map import (
    BmcMap,
    BmcTarget,
    IronicMapping,
    load_bmc_map,
    merge_targets,
    parse_bmc_map,
    targets_from_ironic,
)
from stackfleet.sources.redfish.client import BmcResult, read_bmc, sweep

__all__ = [
    "BmcMap",
    "BmcResult",
    "BmcTarget",
    "IronicMapping",
    "load_bmc_map",
    "merge_targets",
    "parse_bmc_map",
    "read_bmc",
    "sweep",
    "targets_from_ironic",
]

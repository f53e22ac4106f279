"""What the daemon is asked to do (engine/daemon.py): a plain dataclass, cheap to
import, so the CLI can describe its options without loading the engine."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from stackfleet.core.errors import ConfigError

# the same values as engine/quota_sweep.py's DEFAULT_QUOTA_INTERVAL and
# sources/openstack/capacity.py's DEFAULT_AGENT_INTERVAL (a unit test keeps them equal);
# repeated here because importing those modules loads openstacksdk
DEFAULT_QUOTA_INTERVAL = 3600.0
DEFAULT_AGENT_INTERVAL = 600.0

JOB_NAMES = (
    "collect",
    "policies",
    "rollups",
    "quotas",
    "usage",
    "infra",
    "hardware",
    "alerts",
    "events",
    "audit",
    "campaigns",
    "drift",
    "health",
)


@dataclass
class DaemonConfig:
    """What `stackfleet serve` (or the demo) asks the daemon to do."""

    clouds: Sequence[str]
    system_cloud: str | None = None
    # clouds.yaml files (None: openstacksdk's usual places)
    config_files: list[str] | None = None
    # seconds between collection passes, and before the first one
    interval: float = 300.0
    first_pass_delay: float = 0.0
    # policy files and built-in packs (`pack:NAME`) to run after the passes
    policy_files: Sequence[str] = ()
    execute_actions: bool = False
    # the settings file (None: $STACKFLEET_CONFIG or the config dir)
    settings_file: str | None = None
    # database/RabbitMQ targets (None: $STACKFLEET_INFRA_CONFIG or the config dir)
    infra_config: str | None = None
    infra_interval: float = 60.0
    bmc_map: str | None = None
    hardware_interval: float = 60.0
    include_ironic: bool = True
    # listen to the clouds' notifications (None: the settings' notifications.enabled)
    notifications: bool | None = None
    quota_interval: float = DEFAULT_QUOTA_INTERVAL
    quota_check_every: float = 300.0
    agent_interval: float = DEFAULT_AGENT_INTERVAL
    dispatch_tick: float = 5.0
    # the jobs this daemon runs (None: every job that has something to do)
    jobs: Collection[str] | None = None
    # False: leave out the jobs only a leader runs (a future `stackfleet worker`)
    leader: bool = True
    # seconds of random delay added to each wait of the sweeps (spreads the load)
    jitter: float = 0.0
    # scale-out (`stackfleet worker`): a tooz backend URL (redis://, etcd3+http://,
    # zookeeper://). Workers share the collection by (cloud, region) and the BMC
    # sweeps by host; the leader runs the `leader_only` jobs. None: a lone process.
    coordination_url: str | None = None
    member_id: str | None = None
    # seconds without a heartbeat before a worker counts as dead (and its leader
    # lock expires): what a takeover after a kill -9 waits at most
    membership_timeout: float = 5.0
    # seconds between a worker's checks for due or newly gained partitions
    partition_tick: float = 1.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.jobs or ()) - set(JOB_NAMES))
        if unknown:
            raise ConfigError(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(JOB_NAMES)}")

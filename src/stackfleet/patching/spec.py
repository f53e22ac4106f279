"""The campaign spec: YAML validated as policies are (file, line, field, and the closest
allowed choices), before anything runs.

    campaign:
      name: nova-cpu-ratio
      cloud: prod                  # clouds.yaml name
      region: RegionOne
      connector: {type: ssh, user: ops}
      targets:
        hosts: {roles: [compute], availability_zones: [az1], names: [...], exclude: [...]}
        services: [nova-compute]
      steps:
        pre_check: {gate: true}    # the gate on the untouched host: passing marks its
                                   # running revision tested (what a rollback returns to)
        drain: {concurrency: 4, fallback: cold-migrate}
        apply:
          - config: {file: /etc/nova/nova.conf, set: {DEFAULT: {cpu_allocation_ratio: "4.0"}}}
          - playbook: playbooks/patch.yml
          - command: apt-get -y upgrade
          - packages: {service: nova-compute, versions: {nova-compute: "3:29.0.1-0ubuntu1"}}
        restart: {command: systemctl restart nova-compute}
        gate: {heartbeat_max_age: 60s, canary: {flavor: m1.tiny, image: cirros}}
        undrain: true
      rollout: {canary_hosts: 1, batch_size: 10%, pause: 5m}
      abort: {max_failed_hosts: 1}
      rollback: {on_gate_failure: true}
      window: {start: 2026-12-08T22:00:00Z, end: 2026-12-09T04:00:00Z}
      approvals: {per_batch: true}

Checks that need more than the file (hosts and services that exist, playbooks that pass
`ansible-playbook --syntax-check`, an open window) are in `check_spec`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stackfleet.core.times import Duration
from stackfleet.patching.connectors import ConnectorSpec
from stackfleet.patching.services import ServiceDefinition
from stackfleet.policy.errors import Loc, PolicyError, Problem, format_loc
from stackfleet.policy.marked_yaml import YamlSyntaxError, line_of, load
from stackfleet.policy.validation import problems_from

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ROLES = ("compute", "controller")
STEP_ORDER = ("pre-check", "drain", "apply", "restart", "gate", "undrain")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostTargets(_Strict):
    """Which hosts: every condition given must hold (names, roles, zones, aggregates)."""

    names: list[str] = Field(default_factory=list, description="Host names.")
    roles: list[Literal["compute", "controller"]] = Field(
        default_factory=list,
        description="compute: runs nova-compute; controller: runs nova-conductor.",
    )
    availability_zones: list[str] = Field(default_factory=list)
    aggregates: list[str] = Field(default_factory=list, description="Host aggregate names.")
    exclude: list[str] = Field(default_factory=list, description="Host names left out.")


class InstanceTargets(_Strict):
    """Which servers (VM patching by rebuild): every condition given must hold."""

    names: list[str] = Field(default_factory=list, description="Server names or ids.")
    tags: list[str] = Field(default_factory=list, description="Nova tags, all present.")
    server_group: str | None = Field(default=None, description="Server group name or id.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Metadata values.")

    def given(self) -> bool:
        return bool(self.names or self.tags or self.server_group or self.metadata)


class Targets(_Strict):
    hosts: HostTargets = Field(default_factory=HostTargets)
    services: list[str] = Field(
        default_factory=list,
        description="The services whose revisions are captured and applied (host campaigns).",
    )
    instances: InstanceTargets | None = Field(
        default=None,
        description="Servers patched by rebuilding them onto a new image (instead of "
        "hosts and services).",
    )


class Check(_Strict):
    """An operator check: a command on the host (exit 0 passes) or a playbook."""

    command: str | None = None
    playbook: str | None = None
    timeout: Duration = Field(default=timedelta(minutes=5))

    @model_validator(mode="after")
    def _one(self) -> Check:
        if (self.command is None) == (self.playbook is None):
            raise ValueError("a check is either `command` or `playbook`")
        return self


class Canary(_Strict):
    """A server forced onto the host (availability zone `zone:host`) that must go ACTIVE;
    it is deleted afterwards."""

    flavor: str = Field(description="Flavor name or id.")
    image: str = Field(description="Image name or id.")
    network: str | None = Field(default=None, description="Network id (default: none).")
    timeout: Duration = Field(default=timedelta(minutes=5))


class Gate(_Strict):
    """The health gate after a change (and, in pre_check, before it)."""

    services_up: bool = Field(default=True, description="The host's services up, not forced down.")
    heartbeat_max_age: Duration | None = Field(
        default=timedelta(seconds=60),
        description="Heartbeats (os-services updated_at) at most this old, and newer than "
        "the restart; null: not checked.",
    )
    no_new_alerts: bool = Field(
        default=True, description="No alert about the host started since its change."
    )
    canary: Canary | None = None
    checks: list[Check] = Field(default_factory=list)
    wait: Duration = Field(
        default=timedelta(minutes=2),
        description="How long services may take to come back before the gate fails.",
    )


class PreCheck(_Strict):
    gate: bool = Field(default=True, description="Run the gate on the untouched host.")
    checks: list[Check] = Field(default_factory=list)


class Drain(_Strict):
    """Disable the compute service (reason: the campaign), then move what runs on it."""

    enabled: bool = True
    concurrency: int = Field(default=4, ge=1, le=64, description="Live migrations at once.")
    fallback: Literal["none", "cold-migrate", "stop"] = Field(
        default="none",
        description="What to do with a server live migration cannot move: none (the "
        "drain fails), cold-migrate, or stop (started again at undrain).",
    )
    timeout: Duration = Field(default=timedelta(minutes=30))
    leave_statuses: list[str] = Field(
        default_factory=lambda: ["ERROR"],
        description="Servers in these statuses stay on the host (listed in the step's "
        "record): an ERROR server cannot be migrated.",
    )
    capacity_check: bool = Field(
        default=True,
        description="Before disabling the host, check (from the newest collection pass) "
        "that the other usable hosts of its zone and aggregates, outside its batch, can "
        "take its servers, anti-affinity respected; if not, the drain fails saying what "
        "is short and nothing is disabled.",
    )


class ConfigChange(_Strict):
    """Set or unset INI options in one file (other lines, comments included, kept)."""

    file: str
    set: dict[str, dict[str, str]] = Field(default_factory=dict)
    unset: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("set", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                section: (
                    {k: _ini_value(v) for k, v in options.items()}
                    if isinstance(options, dict)
                    else options
                )
                for section, options in value.items()
            }
        return value


def _ini_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class PackageVersions(_Strict):
    service: str
    versions: dict[str, str] = Field(min_length=1)


class ApplyItem(_Strict):
    """One change: a playbook, a command, a config change or package versions."""

    playbook: str | None = None
    extravars: dict[str, Any] = Field(default_factory=dict)
    command: str | None = None
    idempotent: bool | None = Field(
        default=None,
        description="May it run again after an interrupted run? (default: true for "
        "playbooks, config changes and package versions, false for commands)",
    )
    config: ConfigChange | None = None
    packages: PackageVersions | None = None
    image: str | None = Field(
        default=None,
        description="Instance campaigns: the image (name or id) each server is rebuilt onto.",
    )
    timeout: Duration = Field(default=timedelta(minutes=30))

    @model_validator(mode="after")
    def _one(self) -> ApplyItem:
        kinds = ("playbook", "command", "config", "packages", "image")
        given = [n for n in kinds if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "an apply item is exactly one of playbook, command, config, packages, image"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def rerunnable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.command is None


class Restart(_Strict):
    command: str | None = Field(
        default=None, description="Default: each service's definition's restart command."
    )
    enabled: bool = True


class GuestCheck(_Strict):
    """A command run on this machine against a rebuilt server (exit 0 passes), with
    STACKFLEET_SERVER_ID, STACKFLEET_SERVER_NAME, STACKFLEET_SERVER_ADDRESS (its first
    address) and STACKFLEET_IMAGE_ID in its environment."""

    command: str
    timeout: Duration = Field(default=timedelta(minutes=5))


class Rebuild(_Strict):
    """Instance campaigns: how each server is patched by rebuild."""

    snapshot: bool = Field(
        default=True,
        description="Snapshot the server first; a failed server is rebuilt back from it "
        "(else from the image it ran healthy on).",
    )
    checks: list[GuestCheck] = Field(
        default_factory=list, description="Guest checks after the server is ACTIVE again."
    )
    timeout: Duration = Field(
        default=timedelta(minutes=10), description="How long a rebuild or snapshot may take."
    )


class Steps(_Strict):
    pre_check: PreCheck = Field(default_factory=PreCheck)
    rebuild: Rebuild = Field(default_factory=Rebuild)
    drain: Drain = Field(default_factory=Drain)
    apply: list[ApplyItem] = Field(default_factory=list)
    restart: Restart = Field(default_factory=Restart)
    gate: Gate = Field(default_factory=Gate)
    undrain: bool = True


class Rollout(_Strict):
    canary_hosts: int = Field(default=1, ge=0, description="Hosts in the first batch, alone.")
    batch_size: int | str = Field(default=1, description="Hosts per batch, or a percentage.")
    pause: Duration = Field(default=timedelta(0), description="Wait between batches.")

    @field_validator("batch_size")
    @classmethod
    def _size(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("batch_size must be at least 1")
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
        if not match or not 0 < float(match.group(1)) <= 100:
            raise ValueError(
                f"batch_size is a number of hosts or a percentage (10%), not {value!r}"
            )
        return value

    def size(self, hosts: int) -> int:
        if isinstance(self.batch_size, int):
            return self.batch_size
        percent = float(self.batch_size.strip().rstrip("%"))
        return max(1, int(hosts * percent / 100))


class Abort(_Strict):
    max_failed_hosts: int = Field(
        default=1, ge=1, description="Halt once this many hosts failed their gate."
    )


class Rollback(_Strict):
    on_gate_failure: bool = Field(
        default=True, description="Roll a failed host back to its last tested revision."
    )


class Window(_Strict):
    """When the campaign may start batches: between `start` and `end`, and/or daily
    between `daily_from` and `daily_to` (UTC, HH:MM; may span midnight)."""

    start: datetime | None = None
    end: datetime | None = None
    daily_from: time | None = None
    daily_to: time | None = None

    def closed_reason(self, now: datetime) -> str:
        """Why the window is closed at `now` ("" when open)."""
        if self.start is not None and now < _utc(self.start):
            return f"the maintenance window opens at {_utc(self.start):%Y-%m-%d %H:%M} UTC"
        if self.end is not None and now >= _utc(self.end):
            return f"the maintenance window closed at {_utc(self.end):%Y-%m-%d %H:%M} UTC"
        if self.daily_from is not None and self.daily_to is not None:
            moment = now.time().replace(tzinfo=None)
            start, end = self.daily_from.replace(tzinfo=None), self.daily_to.replace(tzinfo=None)
            inside = start <= moment < end if start <= end else (moment >= start or moment < end)
            if not inside:
                return f"outside the daily window {start:%H:%M}-{end:%H:%M} UTC"
        return ""

    def has_ended(self, now: datetime) -> bool:
        return self.end is not None and now >= _utc(self.end)


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Approvals(_Strict):
    per_batch: bool = Field(
        default=False, description="Each batch waits for `stackfleet campaign approve`."
    )


class CampaignSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    cloud: str = Field(description="The cloud (clouds.yaml name).")
    region: str = Field(default="", description="The region (default: the cloud's only one).")
    connector: ConnectorSpec = Field(default_factory=ConnectorSpec)
    services: dict[str, ServiceDefinition] = Field(
        default_factory=dict, description="Service definitions added to the built-in ones."
    )
    targets: Targets
    steps: Steps = Field(default_factory=Steps)
    rollout: Rollout = Field(default_factory=Rollout)
    abort: Abort = Field(default_factory=Abort)
    rollback: Rollback = Field(default_factory=Rollback)
    window: Window | None = None
    approvals: Approvals = Field(default_factory=Approvals)
    poll_interval: Duration = Field(default=timedelta(seconds=2))


class CampaignFile(_Strict):
    campaign: Any


@dataclass
class LoadedSpec:
    """A validated spec and where it came from (for the errors of later checks)."""

    spec: CampaignSpec
    source: str
    root: Any = None
    base: Path = field(default_factory=Path.cwd)

    def problem(self, loc: Loc, message: str) -> Problem:
        full: Loc = ("campaign", *loc)
        return Problem(self.source, line_of(self.root, full), format_loc(full), message)

    def path(self, name: str) -> Path:
        """A file the spec names, relative to the spec file's folder."""
        candidate = Path(name)
        return candidate if candidate.is_absolute() else self.base / candidate


class CampaignError(PolicyError):
    """A campaign spec is invalid; nothing was started."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        count = len(self.problems)
        head = (
            f"{count} problem{'s' if count != 1 else ''} in the campaign spec; nothing was started"
        )
        self.args = (head + "\n" + "\n".join(f"  {p}" for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])


def parse_spec(text: str, source: str = "<campaign>", base: Path | None = None) -> LoadedSpec:
    """The spec of one YAML text; CampaignError naming file, line and field."""
    try:
        root = load(text)
    except YamlSyntaxError as exc:
        raise CampaignError([Problem(source, exc.line, "", str(exc))]) from exc
    if not isinstance(root, dict) or "campaign" not in root:
        raise CampaignError(
            [
                Problem(
                    source,
                    getattr(root, "line", None) or 1,
                    "",
                    "a campaign file is a mapping with one `campaign:` key",
                )
            ]
        )
    problems: list[Problem] = []
    try:
        CampaignFile.model_validate(root)
    except ValidationError as exc:
        for loc, message in problems_from(exc, CampaignFile, what="key"):
            problems.append(Problem(source, line_of(root, loc), format_loc(loc), message))
        raise CampaignError(problems) from exc
    raw = root["campaign"]
    try:
        spec = CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        for loc, message in problems_from(exc, CampaignSpec, ("campaign",), what="key"):
            message = _closest(message, loc)
            problems.append(Problem(source, line_of(root, loc), format_loc(loc), message))
        raise CampaignError(problems) from exc
    loaded = LoadedSpec(spec, source, root, base or Path.cwd())
    problems = target_problems(loaded)
    if problems:
        raise CampaignError(problems)
    return loaded


def target_problems(loaded: LoadedSpec) -> list[Problem]:
    """Hosts and services, or instances with one image change: not both, not neither."""
    spec = loaded.spec
    targets = spec.targets
    problems: list[Problem] = []
    images = [i for i, item in enumerate(spec.steps.apply) if item.image]
    if targets.instances is None:
        if not targets.services:
            problems.append(
                loaded.problem(
                    ("targets", "services"),
                    "missing: the services whose revisions a host campaign captures and "
                    "applies (or `instances:` to patch servers by rebuild)",
                )
            )
        for index in images:
            problems.append(
                loaded.problem(
                    ("steps", "apply", index, "image"),
                    "an image change patches servers: it needs `targets.instances`",
                )
            )
        return problems
    if targets.services:
        problems.append(
            loaded.problem(
                ("targets", "services"),
                "a campaign targets hosts and services or instances, not both",
            )
        )
    if not targets.instances.given():
        problems.append(
            loaded.problem(
                ("targets", "instances"),
                "give at least one of names, tags, server_group, metadata",
            )
        )
    if len(spec.steps.apply) != 1 or not images:
        problems.append(
            loaded.problem(
                ("steps", "apply"),
                "an instance campaign's apply is one `image:` item (the image each server "
                "is rebuilt onto)",
            )
        )
    return problems


def _closest(message: str, loc: Loc) -> str:
    """Add "did you mean" to an unknown key's message."""
    match = re.match(r"unknown key '([^']+)'; allowed: (.*)", message)
    if not match:
        return message
    guess = difflib.get_close_matches(match.group(1), match.group(2).split(", "), n=1)
    return f"{message} (did you mean {guess[0]!r}?)" if guess else message


def load_spec(path: str | Path) -> LoadedSpec:
    """The spec of a file; CampaignError when it cannot be read or is invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(
            [Problem(str(path), None, "", f"cannot read: {exc.strerror or exc}")]
        ) from exc
    return parse_spec(text, str(path), Path(path).resolve().parent)


def closest(name: str, choices: list[str]) -> str:
    """`; did you mean X?` or the known choices (at most 10)."""
    guess = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if guess:
        return f"; did you mean {', '.join(guess)}?"
    shown = sorted(choices)[:10]
    more = f" (and {len(choices) - 10} more)" if len(choices) > 10 else ""
    return f"; known: {', '.join(shown)}{more}" if shown else "; none known"

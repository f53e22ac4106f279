"""The shape of a policy file, as pydantic models: a file holds `policies:`, each with
`name`, `resource`, `filters`, `actions`, `mode` and `safety`. Filters and actions are
checked against their registries by the loader (policy/loader.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackfleet.actions.base import Action
from stackfleet.core.times import Duration
from stackfleet.policy.filters.base import Filter, compile_all, reads_all
from stackfleet.policy.view import FleetView

# an optional pack prefix: `database/connections-high`, as infrastructure findings are named
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}(/[a-z0-9][a-z0-9._-]{0,63})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mode(_Strict):
    """When a policy runs. `periodic`: in `stackfleet serve`, after a collection pass,
    at most every `interval` (0s: after every pass). `event`: when one of `events` (an
    OpenStack notification event type) arrives. `manual`: only by `stackfleet policy
    run`."""

    type: Literal["periodic", "event", "manual"] = "periodic"
    interval: Duration = Field(default=timedelta(0), description="Periodic: at most this often.")
    events: list[str] = Field(default_factory=list, description="Event: notification types.")


class RateLimit(_Strict):
    """At most `count` executed actions per `per` (a duration)."""

    count: int = Field(ge=1)
    per: Duration


class Safety(_Strict):
    """Per-policy limits; unset ones fall back to the global settings."""

    max_actions: int | None = Field(
        default=None, ge=0, description="Most actions one run may execute."
    )
    max_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Blast radius: most destructive actions in one run, as % of the kind.",
    )
    rate_limit: RateLimit | None = Field(default=None, description="Executed actions over time.")
    exclude_tag: str | None = Field(
        default=None, description="Resources with this tag or metadata key are never acted on."
    )
    exclude_projects: list[str] = Field(
        default_factory=list, description="Project ids or names never acted on."
    )
    require_approval: bool = Field(
        default=False, description="Actions wait in the approvals queue for `stackfleet approve`."
    )


Severity = Literal["info", "warning", "critical"]


class Escalation(_Strict):
    """A higher severity for the findings whose resource also passes `filters`, e.g. a
    temperature above its sensor's critical threshold: critical, where above the
    non-critical one is a warning. The finding (and its alert) follows the reading."""

    severity: Severity = Field(description="The finding's severity when the filters match.")
    filters: list[Any] = Field(description="Filters over the same record, as `filters:`.")


class PolicySpec(_Strict):
    """One policy as written in the file (filters and actions still raw)."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Unique name: lowercase, digits, . _ - (one / after a pack name)",
    )
    resource: str = Field(description="The resource kind the policy filters.")
    description: str = ""
    severity: Severity = "warning"
    escalate: list[Escalation] = Field(
        default_factory=list,
        description="Severities by reading: the first entry whose filters also match a "
        "resource gives its finding's severity (else `severity`).",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(
        default="",
        description="One line on a finding, for its alert: a template over the record's "
        "fields, e.g. '{name}: {metrics[connections_used_ratio]:.1%} of max_connections'. "
        "Refreshed at each run while the finding is open.",
    )
    alert: bool = Field(default=True, description="Raise an alert for each open finding.")
    enabled: bool = True
    mode: Mode = Field(default_factory=Mode)
    filters: list[Any] = Field(default_factory=list)
    actions: list[Any] = Field(default_factory=list)
    safety: Safety = Field(default_factory=Safety)


class PolicyFile(_Strict):
    """A policy file: a list of policies under `policies:`."""

    policies: list[Any] = Field(description="The policies of this file.")


@dataclass
class Policy:
    """A validated policy: its spec, its filters and actions bound to its kind."""

    spec: PolicySpec
    filters: list[Filter]
    actions: list[Action]
    source: str = ""
    line: int | None = None
    reads: set[str] = field(default_factory=set)
    # (severity, filters) of `escalate`, in order
    escalations: list[tuple[str, list[Filter]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reads = reads_all(self.filters) | {self.spec.resource}

    def severity_rule(self, view: FleetView) -> Callable[[dict[str, Any]], str] | None:
        """A function giving the severity of a finding on a matched record (the first
        escalation whose filters match, else the policy's severity); None when the
        policy has one severity for every finding."""
        if not self.escalations:
            return None
        tiers = [(severity, compile_all(filters, view)) for severity, filters in self.escalations]
        default = self.spec.severity

        def severity_of(record: dict[str, Any]) -> str:
            for severity, matches in tiers:
                if matches(record):
                    return severity
            return default

        return severity_of

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.resource

    def summary_of(self, record: dict[str, Any]) -> str:
        """The policy's `summary` over one record (its name and the resource's without
        one). A field the record lacks (a metric a server does not report) leaves the
        template as written rather than failing the run."""
        if not self.spec.summary:
            return f"{self.name}: {record.get('name') or record.get('id')}"
        try:
            return self.spec.summary.format_map(record)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return self.spec.summary

    @property
    def destructive(self) -> bool:
        return any(a.destructive for a in self.actions)

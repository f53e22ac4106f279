"""The policy engine's settings: global safety limits, notification and alert routing.

Read from a YAML file: `--config FILE`, else $STACKFLEET_CONFIG, else `stackfleet.yaml`
in the user's configuration directory when it exists; defaults otherwise. Policies'
own `safety:` settings override the global ones where they are set."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackfleet.alerts.routing import InhibitRule, Receiver
from stackfleet.core.config import config_dir
from stackfleet.core.delivery import NotifySettings
from stackfleet.core.errors import ConfigError
from stackfleet.core.times import Duration
from stackfleet.engine.health_settings import HealthSettings
from stackfleet.engine.usage import UsageSettings
from stackfleet.policy.schema import RateLimit
from stackfleet.sources.notifications import NotificationSettings
from stackfleet.sources.openstack.connection import DEFAULT_API_TIMEOUT, set_api_timeout
from stackfleet.store.inventory import ShrinkLimit


class GlobalSafety(BaseModel):
    """Limits every policy run is held to."""

    model_config = ConfigDict(extra="forbid")

    max_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="Blast radius: most destructive actions per kind and run, as % of the kind.",
    )
    max_actions_per_policy: int = Field(
        default=50, ge=0, description="Most actions one policy may execute in one run."
    )
    max_actions_per_run: int = Field(
        default=200, ge=0, description="Most actions all policies together execute in one run."
    )
    rate_limit: RateLimit | None = Field(
        default_factory=lambda: RateLimit(count=500, per=timedelta(hours=1)),
        description="Executed actions over time, all policies together.",
    )
    exclude_tag: str = Field(
        default="stackfleet-exclude",
        description="Resources with this tag or metadata key are never acted on.",
    )
    running_stale_after: Duration = Field(
        default=timedelta(hours=1),
        description="An action still `running` this long after it started belongs to a "
        "run that ended without recording its outcome: it is recorded failed and may be "
        "tried again (it never counts as done).",
    )


class AlertSettings(BaseModel):
    """Where alerts are routed: every receiver gets the alerts its matchers match,
    grouped by its group_by labels; inhibition rules mute alerts while a related one
    fires (docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid")

    receivers: list[Receiver] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)


class CollectSettings(BaseModel):
    """How passes judge their listings."""

    model_config = ConfigDict(extra="forbid")

    shrink_percent: float = Field(
        default=ShrinkLimit.percent,
        ge=0,
        le=100,
        description="A complete-looking listing missing more than this % of a kind's live "
        "resources (and more than shrink_count) is held as incomplete until the next pass "
        "confirms the shrink.",
    )
    shrink_count: int = Field(
        default=ShrinkLimit.count,
        ge=0,
        description="... and more than this many resources (see shrink_percent).",
    )
    hold_shrinks: bool = Field(
        default=True, description="false: believe every complete-looking listing at once."
    )

    @property
    def shrink(self) -> ShrinkLimit | None:
        return ShrinkLimit(self.shrink_percent, self.shrink_count) if self.hold_shrinks else None


class AuditSettings(BaseModel):
    """Anchoring the audit log outside the database (docs/policies.md, "Audit log")."""

    model_config = ConfigDict(extra="forbid")

    checkpoints: str | None = Field(
        default=None,
        description="File the daemon appends a signed checkpoint of the log's head to "
        "(default $STACKFLEET_AUDIT_CHECKPOINTS; none: no checkpoints). Keep it where the "
        "database's writers cannot change it.",
    )
    checkpoint_interval: Duration = Field(
        default=timedelta(minutes=15), description="How often the daemon writes one."
    )


class ProvisionSettings(BaseModel):
    """Provisioning (`stackfleet provision`, `stackfleet workload`, the API's
    /v1/workloads)."""

    model_config = ConfigDict(extra="forbid")

    require_approval: bool = Field(
        default=False,
        description="Every create, delete and changing verb of every workload waits in the "
        "approvals queue (`stackfleet approve ID` carries it out).",
    )


class Settings(BaseModel):
    """Everything in the settings file."""

    model_config = ConfigDict(extra="forbid")

    safety: GlobalSafety = Field(default_factory=GlobalSafety)
    collect: CollectSettings = Field(default_factory=CollectSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    verify_timeout: Duration = Field(
        default=timedelta(seconds=300), description="How long to wait for a change to show."
    )
    poll_interval: Duration = Field(default=timedelta(seconds=2))
    actor: str = Field(default="stackfleet", description="Who the audit log says acted.")
    audit: AuditSettings = Field(default_factory=AuditSettings)
    provision: ProvisionSettings = Field(default_factory=ProvisionSettings)
    api_timeout: Duration = Field(
        default=timedelta(seconds=DEFAULT_API_TIMEOUT),
        description="How long one OpenStack API call may take before it fails (a hung "
        "endpoint then fails its part of a pass instead of stalling it); a cloud's own "
        "api_timeout in clouds.yaml wins.",
    )
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    usage: UsageSettings = Field(
        default_factory=UsageSettings, description="Real server/hypervisor usage source."
    )
    health: HealthSettings = Field(
        default_factory=HealthSettings,
        description="Health assessment and automatic recovery (docs/health.md).",
    )

    def apply_api_timeout(self) -> None:
        """Make `api_timeout` the timeout of the OpenStack connections made from now on."""
        set_api_timeout(self.api_timeout.total_seconds())


def settings_path(explicit: str | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("STACKFLEET_CONFIG")
    if env:
        return Path(env)
    default = config_dir() / "stackfleet.yaml"
    return default if default.is_file() else None


def load_settings(path: str | None = None) -> Settings:
    """The settings from `path` (or the default places); ConfigError says what is wrong."""
    found = settings_path(path)
    if found is None:
        return Settings()
    try:
        data = yaml.safe_load(found.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {found}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {found} is not valid YAML: {exc}") from exc
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"settings file {found}: {details}") from exc

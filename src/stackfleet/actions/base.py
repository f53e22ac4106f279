"""The action base class and registry.

An action is a change to one resource. It is a pydantic model of its options,
registered under its `type` name for the kinds it can change (one name may have a class
per service: `delete` for servers, volumes, ports, ...). Every action can say what it
would change before changing it (`plan`, as a diff), carry it out (`execute`) and check
that the change took (`verify`). The engine wraps these in the safety gate and the audit
log; an action never decides whether it may run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import keystoneauth1.exceptions as ksa_exc
import openstack.exceptions
from pydantic import BaseModel, ConfigDict, PrivateAttr

from stackfleet.core.errors import StackFleetError
from stackfleet.core.redaction import redact_options

log = logging.getLogger(__name__)

Record = dict[str, Any]
Problems = list[tuple[tuple[str | int, ...], str]]


class ActionError(StackFleetError):
    """An action failed against the cloud (the message says which call and why)."""

    exit_code = 5


class FailedInService(ActionError):
    """Raised while verifying: the service took the request, then failed the operation
    itself (Nova reverted a stop's task state): the action failed, it is not merely
    unconfirmed."""


class Stale(StackFleetError):
    """The resource changed while the action was under way (e.g. during the snapshot or
    backup taken before a deletion): the action stops before its change, and is
    recorded as skipped with what it made so far (`result`)."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.result = result or {}


@dataclass(frozen=True)
class Change:
    """One line of a plan's diff: a field going from `before` to `after`."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Plan:
    """What an action would do to one resource."""

    action: str
    summary: str
    changes: tuple[Change, ...]
    destructive: bool
    options: dict[str, Any] = field(default_factory=dict)
    # The live state the plan assumes (record field -> value); checked just before
    # acting, so a resource that changed since the pass is left alone.
    expects: dict[str, Any] = field(default_factory=dict)

    def diff_lines(self) -> list[str]:
        """The change as unified-diff style lines (Ansible's --diff)."""
        lines: list[str] = []
        for change in self.changes:
            if change.before is not None:
                lines.append(f"-{change.field}: {_show(change.before)}")
            if change.after is not None:
                lines.append(f"+{change.field}: {_show(change.after)}")
        return lines


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "[]"
    return str(value)


@dataclass(frozen=True)
class Skip:
    """An action that will not run on this resource, and why (e.g. a volume that is
    still attached)."""

    action: str
    reason: str


@dataclass
class Outcome:
    """What executing and verifying an action found."""

    verified: bool
    observed: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class Notifier(Protocol):
    """Sends notifications (the engine provides one built from settings)."""

    def send(
        self,
        recipients: list[str],
        subject: str,
        body: str,
        webhook: str | None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]: ...

    def owner_addresses(self, record: Record, conn_for: Callable[[], Any]) -> list[str]: ...


class ActionContext(Protocol):
    """What an action may use while executing."""

    @property
    def now(self) -> datetime: ...

    @property
    def verify_timeout(self) -> float: ...

    @property
    def poll_interval(self) -> float: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def template_values(self) -> dict[str, Any]: ...

    @property
    def idempotency_key(self) -> str:
        """The idempotency key of the action executing ("" outside the executor)."""
        ...

    def connection(self, cloud: str, region: str) -> Any: ...


def still_as_planned(ctx: ActionContext, result: dict[str, Any]) -> None:
    """Check the live resource again, just before the change itself, when an action
    spent time first (a snapshot or backup before a deletion): raise Stale when it is
    gone, excluded or no longer as the plan expects. The engine provides the check
    (`recheck` on its context); a context without one checks nothing."""
    recheck: Callable[[], str] | None = getattr(ctx, "recheck", None)
    if recheck is None:
        return
    reason = recheck()
    if reason:
        raise Stale(f"{reason} (re-read after the pre-delete copy; nothing deleted)", result)


# Live readers by kind: what `observe` of a kind's actions returns. Registered by the
# service modules, used by actions that act on any kind (notify) so that the re-read
# before acting checks exclusion and expectations on the live record there too.
LiveReader = Callable[[ActionContext, Record], "dict[str, Any] | None"]
LIVE_READERS: dict[str, LiveReader] = {}


def read_live(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    """The live state of `record` by its kind's reader; {} when its kind has none."""
    reader = LIVE_READERS.get(record.get("kind") or "")
    return {} if reader is None else reader(ctx, record)


class Action(BaseModel):
    """Base of every action. Subclasses declare `type` as a Literal and their options."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Kinds this class acts on, and whether its change is destructive (stops a workload,
    # deletes or releases something): destructive actions are the ones the safety gate
    # caps and blocks on incomplete passes.
    kinds: ClassVar[tuple[str, ...]] = ()
    destructive: ClassVar[bool] = False
    # Options that hold filters: the policy loader parses them for the policy's kind and
    # keeps the parsed filters in `nested`.
    nested_filters: ClassVar[tuple[str, ...]] = ()

    type: str
    _nested: dict[str, list[Any]] = PrivateAttr(default_factory=dict)

    @property
    def nested(self) -> dict[str, list[Any]]:
        """Parsed filters of the options named in `nested_filters`."""
        return self._nested

    def check(self, kind: str) -> Problems:
        """Problems with the options for `kind` (override)."""
        return []

    def plan(self, record: Record) -> Plan | Skip | None:
        """The change this action would make to `record`; None when the resource is
        already as the action would leave it (nothing to do); Skip when it must not run
        on this resource."""
        raise NotImplementedError

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        """The resource's live state, in record field names, read from the cloud just
        before acting; None when the resource is gone. The engine compares it with the
        plan's `before` values: a resource that changed since the pass is left alone."""
        return {}

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        """Make the change; returns details worth auditing (e.g. a snapshot's id)."""
        raise NotImplementedError

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        """Check that the change took, reading the resource back."""
        return Outcome(verified=True, result=result)

    def make_plan(
        self,
        record: Record,
        summary: str,
        *changes: Change,
        expects: dict[str, Any] | None = None,
    ) -> Plan:
        """A plan of `changes`; it expects each changed field still to hold its `before`
        value (top-level fields), plus `expects`."""
        assumed = {
            c.field: c.before
            for c in changes
            if "." not in c.field and c.before is not None and c.field in record
        }
        assumed.update(expects or {})
        return Plan(
            action=self.type,
            summary=summary,
            changes=tuple(changes),
            destructive=self.destructive,
            # the plan is shown by the API and kept in action records and the audit
            # log: a webhook's URL (often its credential) only as its public part
            options=redact_options(self.model_dump(exclude={"type"}, mode="json")),
            expects=assumed,
        )


def call(what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call openstacksdk; its errors become an ActionError naming `what` failed."""
    try:
        return function(*args, **kwargs)
    except openstack.exceptions.SDKException as exc:
        raise ActionError(f"{what} failed: {exc}") from exc
    except ksa_exc.ClientException as exc:
        raise ActionError(f"{what} failed: {exc}") from exc


def gone(function: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """(True, None) when reading the resource answers 404, else (False, resource)."""
    try:
        return False, function(*args)
    except openstack.exceptions.NotFoundException:
        return True, None
    except (openstack.exceptions.SDKException, ksa_exc.ClientException) as exc:
        raise ActionError(f"reading the resource back failed: {exc}") from exc


def label(record: Record) -> str:
    """How a resource is named in messages: kind, name and id."""
    name = record.get("name")
    kind = record.get("kind", "resource")
    return (
        f"{kind} {name} ({record['id']})"
        if name and name != record["id"]
        else f"{kind} {record['id']}"
    )


def wait_for(
    ctx: ActionContext, check: Callable[[], tuple[bool, dict[str, Any]]], what: str
) -> Outcome:
    """Poll `check` until it reports done or the verify timeout passes."""
    deadline = time.monotonic() + ctx.verify_timeout
    observed: dict[str, Any] = {}
    while True:
        done, observed = check()
        if done:
            return Outcome(verified=True, observed=observed)
        if time.monotonic() >= deadline:
            return Outcome(
                verified=False,
                observed=observed,
                message=f"{what}: not confirmed within {ctx.verify_timeout:g} s",
            )
        time.sleep(ctx.poll_interval)


class ActionRegistry:
    """Action classes by name and kind."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, type[Action]]] = {}

    def register(self, name: str) -> Callable[[type[Action]], type[Action]]:
        def add(cls: type[Action]) -> type[Action]:
            by_kind = self._items.setdefault(name, {})
            for kind in cls.kinds:
                if kind in by_kind:
                    raise ValueError(f"action {name!r} is registered twice for {kind}")
                by_kind[kind] = cls
            return cls

        return add

    def get(self, name: str, kind: str) -> type[Action] | None:
        return self._items.get(name, {}).get(kind)

    def kinds_of(self, name: str) -> list[str]:
        return sorted(self._items.get(name, {}))

    def names(self) -> list[str]:
        return sorted(self._items)

    def names_for(self, kind: str) -> list[str]:
        return sorted(name for name, by_kind in self._items.items() if kind in by_kind)

    def classes(self) -> Iterator[tuple[str, type[Action]]]:
        """(name, class) once per class, in name order."""
        for name in self.names():
            seen: list[type[Action]] = []
            for cls in self._items[name].values():
                if cls not in seen:
                    seen.append(cls)
                    yield name, cls

    def __contains__(self, name: object) -> bool:
        return name in self._items


ACTIONS = ActionRegistry()

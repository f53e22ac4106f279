"""What every backend's member actions share: the action base (a member of a workload,
acting as its project), re-reading the member before acting, the connection and
request log an action uses, and waiting for a member to reach a state with reads of
that member until it does, fails or the executor's timeout passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import PrivateAttr

from stackfleet.actions.base import (
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    wait_for,
)
from stackfleet.sources.openstack.listing import RequestLog

# re-reads one member just before acting (None: gone): its workload label and state
MemberReader = Callable[[ActionContext, Record], "dict[str, Any] | None"]
State = dict[str, Any]


def session(ctx: ActionContext, record: Record) -> tuple[Any, RequestLog]:
    """The connection a member action acts with and the request log it counts in."""
    log: RequestLog = getattr(ctx, "request_log", None) or RequestLog()
    return ctx.connection(record["cloud"], record["region"]), log


def wait_member(
    ctx: ActionContext,
    record: Record,
    read: MemberReader,
    done: Callable[[State], bool],
    failed: Callable[[State], str | None],
    what: str,
) -> Outcome:
    """Re-read the member until `done` says it is there; ActionError as soon as
    `failed` names a failure (a member gone meanwhile is waited for, not done)."""

    def check() -> tuple[bool, State]:
        state = read(ctx, record)
        if state is None:
            return False, {"gone": True}
        problem = failed(state)
        if problem:
            raise ActionError(f"{what}: {problem}")
        return done(state), state

    return wait_for(ctx, check, what)


class MemberAction(Action):
    """An action on one member of a workload, as its project (`project_id` is kept in
    the action's options so an approved action can be carried out later). Each backend
    names the member kind and how a member is re-read."""

    kinds = ("server",)
    workload: str
    project_id: str = ""
    # what the member must still show when the action runs (besides the workload label)
    idle_expected: ClassVar[bool] = False

    @staticmethod
    def read(ctx: ActionContext, record: Record) -> State | None:
        raise NotImplementedError

    def observe(self, ctx: ActionContext, record: Record) -> State | None:
        return type(self).read(ctx, record)

    def _plan(self, record: Record, summary: str, *changes: Change) -> Plan:
        """The plan of a verb on an existing member: it must still carry the
        workload's label (and, where the backend says so, have no task under way)."""
        expects: dict[str, Any] = {"workload": self.workload}
        if self.idle_expected:
            expects["task_state"] = None
        return self.make_plan(
            record, f"{summary} of workload {self.workload}", *changes, expects=expects
        )


class CreatesMember(MemberAction):
    """An action that makes a new member: the member's id once the service took it."""

    _server_id: str | None = PrivateAttr(default=None)

    @property
    def server_id(self) -> str | None:
        """The new member's id (server, node or container), once accepted."""
        return self._server_id

    def observe(self, ctx: ActionContext, record: Record) -> State | None:
        return {}


class StateVerb(MemberAction):
    """A verb that moves a member to a state (start, stop, reboot), planned and verified
    the same way on every backend: nothing to do when the member already has
    `done_status`; the backend says how to ask for the change (`act`) and how to see
    it done (`reached`)."""

    done_status: ClassVar[str | None] = None
    words: ClassVar[str] = ""  # the plan's summary, with {name}
    # the plan's change: field, value before (None: the member's status), value after
    change: ClassVar[tuple[str, str | None, str]] = ("status", None, "")

    def plan(self, record: Record) -> Plan | None:
        if self.done_status is not None and record.get("status") == self.done_status:
            return None
        field, before, after = self.change
        was = before if before is not None else record.get("status")
        return self._plan(
            record, self.words.format(name=record.get("name")), Change(field, was, after)
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        self.act(ctx, record)
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self.reached(ctx, record)

    def act(self, ctx: ActionContext, record: Record) -> None:
        raise NotImplementedError

    def reached(self, ctx: ActionContext, record: Record) -> Outcome:
        raise NotImplementedError

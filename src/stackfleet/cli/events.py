"""Event commands: `stackfleet events listen` prints a cloud's notifications as they
arrive (to check the wiring), and `stackfleet policy run --event TYPE --resource ID`
runs the event policies for one resource by hand."""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.core.errors import ConfigError, InvalidQueryError, NotFoundError

if TYPE_CHECKING:
    from stackfleet.engine.event_processor import EventOutcome
    from stackfleet.engine.settings import Settings
    from stackfleet.policy.schema import Policy
    from stackfleet.sources.notifications import CloudNotifications, Notification

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `events` to the root app."""
    events = typer.Typer(help="OpenStack notifications: event-driven refresh and policies.")
    events.command("listen")(listen_command)
    app.add_typer(events, name="events")


def listen_command(
    os_cloud: Annotated[
        str | None,
        typer.Option("--os-cloud", help="Cloud whose configured transport URL(s) to use."),
    ] = None,
    transport_url: Annotated[
        list[str] | None,
        typer.Option("--transport-url", help="Listen here instead (repeatable)."),
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Topic (repeatable; default: both).")
    ] = None,
    exchange: Annotated[
        list[str] | None, typer.Option("--exchange", help="Exchange (repeatable).")
    ] = None,
    count: Annotated[
        int, typer.Option("--count", min=0, help="Stop after this many (0: never).")
    ] = 0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Stop after this many seconds (0: never).")
    ] = 0.0,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Print notifications as they arrive, with the resource each one is about.

    Listens through a pool of its own (a queue deleted when it stops), so a running
    `stackfleet serve` and other consumers keep getting every notification. Every
    format prints a line per notification (yaml: a document each)."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.sources.notifications import (
        NotificationListener,
        delete_pool_queue,
    )

    settings = load_settings(config)
    settings.apply_api_timeout()
    cloud = os_cloud or os.environ.get("OS_CLOUD") or ""
    wiring = _wiring(settings, cloud, transport_url, topic, exchange)
    pool = f"stackfleet-listen-{os.getpid()}"
    seen = 0
    done = threading.Event()
    lock = threading.Lock()

    def show(notification: Notification) -> None:
        nonlocal seen
        with lock:
            if done.is_set():
                return
            seen += 1
            _print_notification(notification, fmt)
            if count and seen >= count:
                done.set()

    listener = NotificationListener(cloud, wiring, show, pool)
    if fmt is Format.csv:
        csv.writer(sys.stdout).writerow(NOTIFICATION_COLUMNS)
    listener.start()
    from stackfleet.core.redaction import redact_url

    urls = ", ".join(redact_url(u) for u in wiring.urls)
    err.print(f"listening on {escape(urls)} (topics {', '.join(wiring.topics)}); Ctrl-C stops")
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while not done.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        for url in wiring.urls:
            delete_pool_queue(url, pool)
    err.print(f"{seen} notification(s)")


def _wiring(
    settings: Settings,
    cloud: str,
    urls: list[str] | None,
    topics: list[str] | None,
    exchanges: list[str] | None,
) -> CloudNotifications:
    from stackfleet.sources.notifications import CloudNotifications

    configured = settings.notifications.clouds.get(cloud) if cloud else None
    if urls:
        wiring = CloudNotifications(transport_url=urls)
        if configured is not None:
            wiring.region = configured.region
    elif configured is not None:
        wiring = configured.model_copy()
    elif cloud:
        raise ConfigError(
            f"no notifications configured for cloud {cloud!r}: pass --transport-url, or add "
            f"notifications.clouds.{cloud}.transport_url to the settings file"
        )
    else:
        raise InvalidQueryError(
            "give --transport-url URL, or --os-cloud NAME with a configured URL"
        )
    if topics:
        wiring.topics = list(topics)
    if exchanges:
        wiring.exchanges = list(exchanges)
    return wiring


NOTIFICATION_COLUMNS = [
    "timestamp",
    "event_type",
    "publisher_id",
    "priority",
    "kind",
    "id",
    "deleted",
]


def _print_notification(notification: Notification, fmt: Format) -> None:
    event = notification.resource_event()
    if fmt is not Format.table:
        data: dict[str, Any] = {
            "event_type": notification.event_type,
            "publisher_id": notification.publisher_id,
            "priority": notification.priority,
            "timestamp": notification.timestamp,
            "kind": event.kind if event else None,
            "id": event.resource_id if event else None,
            "deleted": event.deleted if event else False,
            "payload": notification.payload,
        }
        if fmt is Format.json:
            sys.stdout.write(json.dumps(data, default=str) + "\n")
        elif fmt is Format.yaml:  # one YAML document per notification
            import yaml

            sys.stdout.write("---\n" + yaml.safe_dump(data, sort_keys=False))
        else:  # csv (its header written when listening starts) and value: one row each
            row = ["" if data[c] is None else str(data[c]) for c in NOTIFICATION_COLUMNS]
            if fmt is Format.csv:
                csv.writer(sys.stdout).writerow(row)
            else:
                sys.stdout.write(" ".join(row) + "\n")
        sys.stdout.flush()
        return
    about = (
        f"{event.kind} {event.resource_id}" + (" (deleted)" if event.deleted else "")
        if event
        else "[dim]not about a resource StackFleet keeps[/]"
    )
    out.print(
        f"{escape(notification.timestamp or '')} [bold]{escape(notification.event_type)}[/] "
        f"[dim]{escape(notification.publisher_id)}[/] -> {about}"
    )


def run_for_event(
    ctx: typer.Context,
    policies: list[Policy],
    event_type: str,
    resource_id: str,
    cloud: str | None,
    region: str | None,
    execute: bool,
    settings: Settings,
    fmt: Format,
) -> list[EventOutcome]:
    """`policy run --event TYPE --resource ID`: re-read the resource from its cloud,
    record it, and run the event policies `event_type` triggers over it."""
    from stackfleet.engine.event_processor import EventProcessor, Targets
    from stackfleet.engine.execute import Connections
    from stackfleet.engine.policies import PolicyRunner
    from stackfleet.sources.notifications import ResourceEvent, is_deletion, rule_for

    rule = rule_for(event_type)
    if rule is None:
        raise InvalidQueryError(
            f"--event {event_type!r} is not about a resource StackFleet keeps "
            "(see docs/events.md for the event types)"
        )
    store = state(ctx).store()
    cloud = cloud or os.environ.get("OS_CLOUD") or _known_cloud(store, rule.kind, resource_id)
    processor = EventProcessor(
        store, PolicyRunner(store, settings, Connections()), policies, Targets(), execute
    )
    if not processor.policies_for(rule.kind, [event_type]):
        raise InvalidQueryError(
            f"no enabled event policy on {rule.kind} is triggered by {event_type!r} in the "
            "given files"
        )
    event = ResourceEvent(
        event_type, rule.kind, resource_id, cloud, region or "", deleted=is_deletion(event_type)
    )
    outcomes = processor.process_events([event])
    data = [o.summary() for o in outcomes]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt is Format.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    elif fmt in (Format.csv, Format.value):  # one row per resource and policy run over it
        rows = []
        for outcome in outcomes:
            summary = outcome.summary()
            rows += [{**summary, **report.summary()} for report in outcome.policies] or [summary]
        emit_rows(rows, OUTCOME_COLUMNS, fmt)
    else:
        for outcome in outcomes:
            _print_outcome(outcome)
    return outcomes


OUTCOME_COLUMNS = [
    "cloud",
    "region",
    "kind",
    "id",
    "refresh",
    "error",
    "policy",
    "matched",
    "findings_opened",
    "findings_resolved",
    "actions",
]


def _known_cloud(store: Any, kind: str, resource_id: str) -> str:
    found, _total = store.list_resources(kind, filters={"id": resource_id})
    clouds = sorted({r["cloud"] for r in found})
    if len(clouds) == 1:
        return str(clouds[0])
    if not clouds:
        raise NotFoundError(
            f"no {kind} {resource_id!r} in the inventory: pass --cloud NAME to read it"
        )
    raise InvalidQueryError(f"{kind} {resource_id!r} is known in {', '.join(clouds)}: pass --cloud")


def _print_outcome(outcome: EventOutcome) -> None:
    out.print(
        f"{escape(outcome.kind)} {escape(outcome.resource_id)} in "
        f"{escape(outcome.cloud)}/{escape(outcome.region)}: re-read -> "
        f"[bold]{outcome.refresh}[/]" + (f" ({escape(outcome.error)})" if outcome.error else "")
    )
    for report in outcome.policies:
        summary = report.summary()
        out.print(
            f"  {escape(report.policy.name)}: matched {summary['matched']}, findings "
            f"+{summary['findings_opened']} -{summary['findings_resolved']}, actions "
            f"{summary['actions'] or 'none'}"
        )
        for candidate in report.candidates:
            reason = f" ({escape(candidate.reason)})" if candidate.reason else ""
            out.print(f"    {escape(candidate.action.type)}: {candidate.verdict}{reason}")

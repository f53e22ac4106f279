"""`stackfleet config ...` (configuration revisions, drift) and `stackfleet campaign ...`
(rolling campaigns: plan, start, pause, resume, abort, rollback, status, list)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_object, emit_rows

if TYPE_CHECKING:
    from stackfleet.patching.campaign import CampaignRunner
    from stackfleet.patching.connectors import Connector
    from stackfleet.patching.services import ServiceDefinition
    from stackfleet.store import Store

out = Console(highlight=False, soft_wrap=True)

CloudsYamlOption = Annotated[
    list[str] | None,
    typer.Option("--clouds-yaml", help="clouds.yaml file(s) (default: openstacksdk's places)."),
]
SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="A campaign spec: its connector and service definitions."),
]
ConnectorOption = Annotated[
    str, typer.Option("--connector", help="local, ssh or ansible (without --spec).")
]
RootOption = Annotated[
    str | None, typer.Option("--root", help="local: a directory per host (<root>/<host>).")
]
UserOption = Annotated[str | None, typer.Option("--user", help="ssh/ansible: remote user.")]
InventoryOption = Annotated[
    str | None, typer.Option("--inventory", help="ansible: the inventory file.")
]
ServicesOption = Annotated[
    Path | None, typer.Option("--services", help="Service definitions (YAML `services:`).")
]


def register(app: typer.Typer) -> None:
    """Add the `config` and `campaign` groups."""
    config = typer.Typer(help="Configuration revisions of hosts' services: capture, show, diff.")
    config.command("capture")(config_capture)
    config.command("show")(config_show)
    config.command("diff")(config_diff)
    config.command("history")(config_history)
    config.command("drift")(config_drift)
    app.add_typer(config, name="config")
    campaign = typer.Typer(help="Rolling campaigns over hosts: patching and maintenance.")
    campaign.command("plan")(campaign_plan)
    campaign.command("start")(campaign_start)
    campaign.command("status")(campaign_status)
    campaign.command("list")(campaign_list)
    campaign.command("pause")(campaign_pause)
    campaign.command("resume")(campaign_resume)
    campaign.command("approve")(campaign_approve)
    campaign.command("abort")(campaign_abort)
    campaign.command("rollback")(campaign_rollback)
    app.add_typer(campaign, name="campaign")


# ------------------------------------------------------------------------- config


def _connector(
    spec: Path | None,
    connector: str,
    root: str | None,
    user: str | None,
    inventory: str | None,
    services: Path | None,
) -> tuple[Connector, dict[str, ServiceDefinition], str, str]:
    """The connector and service definitions (and cloud, region) to capture with."""
    from stackfleet.patching.connectors import ConnectorSpec, connector_for
    from stackfleet.patching.services import definitions, load_services_file

    if spec is not None:
        from stackfleet.patching.campaign import _resolved_connector
        from stackfleet.patching.spec import load_spec

        loaded = load_spec(spec)
        defs = definitions(loaded.spec.services)
        if services is not None:
            defs.update(load_services_file(services))
        return (
            connector_for(_resolved_connector(loaded)),
            defs,
            loaded.spec.cloud,
            loaded.spec.region,
        )
    from pydantic import ValidationError

    from stackfleet.core.errors import ConfigError

    try:
        connector_spec = ConnectorSpec(
            type=connector,  # type: ignore[arg-type]
            root=root,
            user=user,
            inventory=inventory,
        )
    except ValidationError as exc:
        raise ConfigError(f"--connector: {exc.errors()[0]['msg']}") from exc
    defs = definitions(load_services_file(services) if services else None)
    return connector_for(connector_spec), defs, "local", ""


def _service_names(defs: dict[str, Any], service: str | None) -> list[str]:
    from stackfleet.core.errors import ConfigError
    from stackfleet.patching.spec import closest

    if service is None:
        return sorted(defs)
    if service not in defs:
        raise ConfigError(f"unknown service {service!r}{closest(service, sorted(defs))}")
    return [service]


def config_capture(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host.")],
    service: Annotated[str | None, typer.Argument(help="One service (default: all).")] = None,
    spec: SpecOption = None,
    connector: ConnectorOption = "local",
    root: RootOption = None,
    user: UserOption = None,
    inventory: InventoryOption = None,
    services: ServicesOption = None,
) -> None:
    """Capture what defines a host's services now (files, packages, image tags) and keep
    it as a revision (content-addressed: the same content is one revision)."""
    from stackfleet.patching.drift import capture_and_record

    store = state(ctx).store()
    conn, defs, _, _ = _connector(spec, connector, root, user, inventory, services)
    for name in _service_names(defs, service):
        revision, new = capture_and_record(store, conn, host, name, defs[name])
        present = sum(1 for t in revision.content["files"].values() if t is not None)
        out.print(
            f"{escape(name)} on {escape(host)}: {revision.digest[:12]} "
            f"({present} file(s), {len(revision.content['packages'])} package(s), "
            f"{len(revision.content['images'])} image(s))" + ("" if new else " unchanged")
        )


def _revision(store: Store, host: str, service: str, which: str | None) -> dict[str, Any]:
    from stackfleet.core.errors import NotFoundError
    from stackfleet.store import patching as records

    if which:
        return records.get_revision(store, host, service, which)
    event = records.latest_event(store, host, service, "captured", "applied", "rolled-back")
    if event is None:
        raise NotFoundError(
            f"no revision of {service} on {host}: `stackfleet config capture {host} {service}`"
        )
    return records.get_revision(store, host, service, event["digest"])


def config_show(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host.")],
    service: Annotated[str | None, typer.Argument(help="One service (default: all).")] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="A digest or its prefix (default: newest).")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """A host's newest revision (or `--revision`) of each service: files, packages,
    images, and whether a campaign's gate tested it."""
    from stackfleet.core.errors import NotFoundError
    from stackfleet.store import patching as records

    store = state(ctx).store()
    names = (
        [service] if service else sorted({s for h, s in records.host_services(store) if h == host})
    )
    if not names:
        raise NotFoundError(f"no revision of any service on {host}")
    shown = [_revision(store, host, name, revision) for name in names]
    if fmt is not Format.table:
        emit_object({"revisions": shown}, fmt)
        return
    for rev in shown:
        tested = (
            f"tested {rev['tested_at']} by {rev['tested_by']}" if rev["tested_at"] else "not tested"
        )
        out.print(
            f"[bold]{escape(rev['service'])}[/] on {escape(host)}: {rev['digest']} ({tested})"
        )
        for path, text in sorted(rev["content"]["files"].items()):
            out.print(f"  file {escape(path)}" + (" (absent)" if text is None else ""))
            for line in (text or "").splitlines():
                out.print(f"    {escape(line)}")
        for name, version in sorted(rev["content"]["packages"].items()):
            out.print(f"  package {escape(name)}={escape(str(version or '(not installed)'))}")
        for name, image in sorted(rev["content"]["images"].items()):
            out.print(f"  image {escape(name)}: {escape(str(image))}")


def config_diff(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host.")],
    service: Annotated[str, typer.Argument(help="The service.")],
    old: Annotated[
        str | None, typer.Argument(help="From (digest; default: the last applied or tested).")
    ] = None,
    new: Annotated[str | None, typer.Argument(help="To (digest; default: the newest).")] = None,
) -> None:
    """The difference between two revisions of a host's service, as a unified diff."""
    from stackfleet.core.errors import NotFoundError
    from stackfleet.patching.revisions import diff
    from stackfleet.store import patching as records

    store = state(ctx).store()
    to = _revision(store, host, service, new)
    if old is None:
        event = records.latest_event(store, host, service, "applied", "rolled-back", "tested")
        if event is None or event["digest"] == to["digest"]:
            history = [
                e for e in records.history(store, host, service) if e["digest"] != to["digest"]
            ]
            if not history:
                raise NotFoundError(f"one revision only of {service} on {host}: nothing to diff")
            event = history[0]
        old = event["digest"]
    frm = records.get_revision(store, host, service, old)
    lines = diff(frm["content"], to["content"], f"{frm['digest'][:12]}:", f"{to['digest'][:12]}:")
    out.print(f"{frm['digest'][:12]} → {to['digest'][:12]}")
    for line in lines or ["(same content)"]:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        out.print(f"[{style}]{escape(line)}[/]" if style else escape(line))


def config_history(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host.")],
    service: Annotated[str | None, typer.Argument(help="One service (default: all).")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """What happened to a host's revisions, newest first: captured, applied (by which
    campaign), tested, rolled back."""
    from stackfleet.store import patching as records

    rows = records.history(state(ctx).store(), host, service)
    for row in rows:
        row["revision"] = row["digest"][:12]
    emit_rows(
        rows,
        ["at", "service", "event", "revision", "campaign"],
        fmt,
        headers=["When", "Service", "Event", "Revision", "Campaign"],
    )


def config_drift(
    ctx: typer.Context,
    hosts: Annotated[
        list[str] | None,
        typer.Option("--host", help="Hosts (default: every host a campaign applied to)."),
    ] = None,
    spec: SpecOption = None,
    connector: ConnectorOption = "local",
    root: RootOption = None,
    user: UserOption = None,
    inventory: InventoryOption = None,
    services: ServicesOption = None,
    settings_file: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Capture what runs and compare it with the last applied revision: a drifted
    service opens a `patching/config-drift` finding (and its alert). Exit 1 on drift."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.patching.drift import applied_targets, check_drift

    store = state(ctx).store()
    conn, defs, cloud, region = _connector(spec, connector, root, user, inventory, services)
    targets = [(h, s) for h, s in applied_targets(store) if (not hosts or h in hosts) and s in defs]
    statuses = check_drift(store, load_settings(settings_file), conn, targets, defs, cloud, region)
    rows = [s.as_dict() for s in statuses]
    for row in rows:
        row["running"] = (row["running"] or "")[:12]
        row["applied"] = (row["applied"] or "")[:12]
    emit_rows(
        rows,
        ["host", "service", "applied", "running", "drifted", "drift", "error"],
        fmt,
        headers=["Host", "Service", "Applied", "Running", "Drifted", "What differs", "Error"],
    )
    if any(s.drift for s in statuses):
        raise typer.Exit(1)


# ------------------------------------------------------------------------- campaign


def _runner(
    ctx: typer.Context, clouds_yaml: list[str] | None, settings_file: str | None
) -> CampaignRunner:
    from stackfleet.engine.execute import Connections
    from stackfleet.engine.settings import load_settings
    from stackfleet.patching.campaign import CampaignRunner

    settings = load_settings(settings_file)
    settings.apply_api_timeout()
    return CampaignRunner(state(ctx).store(), settings, Connections(clouds_yaml or None))


def _print_plan(plan: dict[str, Any]) -> None:
    out.print(
        f"[bold]campaign {escape(plan['name'])}[/] on {escape(plan['cloud'])} "
        f"{escape(plan['region'])}: {sum(len(b) for b in plan['batches'])} "
        f"{plan.get('unit', 'host')}(s) in "
        f"{len(plan['batches'])} batch(es)"
    )
    for index, hosts in enumerate(plan["batches"]):
        label = "canary" if index == 0 else f"batch {index}"
        out.print(f"  {label}: {escape(', '.join(hosts))}")
    steps = {" → ".join(s) for s in plan["steps"].values()}
    for line in sorted(steps):
        out.print(f"  steps: {escape(line)}")
    for host, lines in plan.get("previews", {}).items():
        out.print(f"  apply on {escape(host)}:")
        for line in lines:
            out.print(f"    {escape(line)}")


def campaign_plan(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The campaign spec (YAML).")],
    clouds_yaml: CloudsYamlOption = None,
    settings_file: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Check a campaign spec against the cloud and show what it would do (hosts by
    batch, each host's steps, the config diff on the canary host). Changes nothing."""
    from stackfleet.patching.spec import load_spec

    plan = _runner(ctx, clouds_yaml, settings_file).plan(load_spec(spec)).as_dict()
    if fmt is not Format.table:
        emit_object(plan, fmt)
        return
    _print_plan(plan)


def _progress(text: str) -> None:
    out.print(escape(text))


def campaign_start(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The campaign spec (YAML).")],
    execute: Annotated[
        bool, typer.Option("--execute", help="Really start it (default: show the plan only).")
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Record it and leave it to `stackfleet serve`'s campaigns job."
        ),
    ] = False,
    clouds_yaml: CloudsYamlOption = None,
    settings_file: SettingsOption = None,
) -> None:
    """Start a campaign: check it, record it, and carry it out here until it completes,
    halts or waits (for approval or its window). Without --execute: the plan only."""
    from stackfleet.patching.spec import load_spec

    runner = _runner(ctx, clouds_yaml, settings_file)
    loaded = load_spec(spec)
    if not execute:
        _print_plan(runner.plan(loaded).as_dict())
        out.print("dry-run: nothing started; start it with --execute")
        return
    plan = runner.start(loaded, spec.read_text(encoding="utf-8"))
    _print_plan(plan.as_dict())
    if detach:
        out.print(f"campaign {escape(plan.name)} recorded; `stackfleet serve` carries it out")
        return
    _finish(runner.run(plan.name, on_progress=_progress))


def _finish(campaign: dict[str, Any]) -> None:
    status = campaign["status"]
    out.print(
        f"campaign {escape(campaign['name'])}: {status}"
        + (f": {escape(campaign['error'])}" if campaign.get("error") else "")
    )
    if status in ("halted", "aborted"):
        raise typer.Exit(3)


def campaign_status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Where a campaign stands: its status and each host's steps."""
    from stackfleet.store import patching as records

    store = state(ctx).store()
    campaign = records.get_campaign(store, name)
    steps = records.steps_of(store, campaign["id"])
    if fmt is not Format.table:
        emit_object({**{k: v for k, v in campaign.items() if k != "spec"}, "steps": steps}, fmt)
        return
    out.print(
        f"[bold]campaign {escape(name)}[/]: {campaign['status']}"
        + (f" — {escape(campaign['error'])}" if campaign["error"] else "")
    )
    rows = []
    for host in dict.fromkeys(s["host"] for s in steps):
        mine = [s for s in steps if s["host"] == host]
        row: dict[str, Any] = {"host": host, "batch": mine[0]["batch"]}
        for step in mine:
            row[step["step"]] = step["status"]
        row["error"] = next((s["error"] for s in mine if s["error"]), None)
        rows.append(row)
    if campaign["plan"].get("unit") == "server":
        # an instance campaign: its units are servers (ids), patched by rebuild
        for row in rows:
            row["server"] = row.pop("host")
        middle = ["snapshot", "rebuild", "health-check"]
        columns = ["server", "batch", "pre-check", *middle, "rollback", "error"]
    else:
        middle = ["drain", "apply", "restart", "gate", "undrain"]
        columns = ["host", "batch", "pre-check", *middle, "rollback", "error"]
    emit_rows(rows, columns, fmt)


def campaign_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Every campaign and its status."""
    from stackfleet.store import patching as records

    rows = records.list_campaigns(state(ctx).store())
    for row in rows:
        row["hosts"] = sum(len(b) for b in row["plan"].get("batches") or [])
    emit_rows(rows, ["name", "status", "hosts", "created_at", "updated_at", "error"], fmt)


def campaign_pause(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    settings_file: SettingsOption = None,
) -> None:
    """Pause a running campaign: hosts finish the step they are in, nothing new starts."""
    runner = _runner(ctx, None, settings_file)
    runner.set_status(name, "paused", "campaign.paused", allowed=("running", "awaiting-approval"))
    out.print(f"campaign {escape(name)} paused")


def campaign_resume(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    retry: Annotated[
        bool, typer.Option("--retry", help="Run failed (or uncertain interrupted) steps again.")
    ] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Leave it to `serve`.")] = False,
    clouds_yaml: CloudsYamlOption = None,
    settings_file: SettingsOption = None,
) -> None:
    """Resume a paused or halted campaign (or one whose process died): it goes on from
    what OpenStack and the hosts show, doing no step twice."""
    runner = _runner(ctx, clouds_yaml, settings_file)
    runner.resume(name, retry=retry)
    if detach:
        out.print(f"campaign {escape(name)} running; `stackfleet serve` carries it out")
        return
    _finish(runner.run(name, on_progress=_progress))


def campaign_approve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    clouds_yaml: CloudsYamlOption = None,
    settings_file: SettingsOption = None,
    detach: Annotated[bool, typer.Option("--detach", help="Leave it to `serve`.")] = False,
) -> None:
    """Approve the batch a campaign waits on (approvals.per_batch) and go on."""
    runner = _runner(ctx, clouds_yaml, settings_file)
    runner.approve(name)
    if not detach:
        _finish(runner.run(name, on_progress=_progress))


def campaign_abort(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    settings_file: SettingsOption = None,
) -> None:
    """Abort a campaign: nothing more is started (hosts are left as they are: see
    `campaign status`, and `campaign rollback`)."""
    runner = _runner(ctx, None, settings_file)
    runner.set_status(
        name,
        "aborted",
        "campaign.aborted",
        allowed=("running", "paused", "halted", "awaiting-approval"),
    )
    out.print(f"campaign {escape(name)} aborted")


def campaign_rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign.")],
    hosts: Annotated[
        list[str] | None, typer.Option("--host", help="Hosts (default: every host it changed).")
    ] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Really roll back.")] = False,
    clouds_yaml: CloudsYamlOption = None,
    settings_file: SettingsOption = None,
) -> None:
    """Put each host's last tested revision back, restart and gate it. Refused (nothing
    done) when a host has no tested revision. Without --execute: what it would do."""
    from stackfleet.core.errors import ConfigError
    from stackfleet.patching.campaign import rollback_target
    from stackfleet.store import patching as records

    runner = _runner(ctx, clouds_yaml, settings_file)
    campaign = records.get_campaign(runner.store, name)
    if not execute:
        targets = hosts or sorted(
            {
                s["host"]
                for s in records.steps_of(runner.store, campaign["id"])
                if s["step"] == "apply" and s["status"] != "pending"
            }
        )
        for host in targets:
            for service in campaign["spec"]["targets"]["services"]:
                tested = rollback_target(runner.store, campaign["id"], host, service)
                if tested is None:
                    raise ConfigError(
                        f"no tested revision of {service} on {host}; nothing to roll back to"
                    )
                out.print(
                    f"{escape(host)} {escape(service)}: back to {tested['digest'][:12]} "
                    f"(tested {tested['tested_at']})"
                )
        out.print("dry-run: nothing changed; roll back with --execute")
        return
    results = runner.rollback(name, hosts)
    emit_rows(results, ["host", "status", "error"], Format.table)
    if any(r["status"] != "rolled-back" for r in results):
        raise typer.Exit(3)

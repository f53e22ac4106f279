"""The `openstack fleet ...` commands: cliff Lister / ShowOne over StackFleet's API, so
`-f table|json|yaml|csv|value` and `-c COLUMN` work as for every openstack command."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from osc_lib.command import command

from stackfleet.osc.client import FleetApiError, FleetClient

Rows = tuple[tuple[str, ...], Iterable[tuple[Any, ...]]]


def _client(cmd: command.Command) -> FleetClient:
    client: FleetClient = getattr(cmd.app.client_manager, "fleet")  # noqa: B009 - OSC sets it
    return client


def _rows(items: Iterable[dict[str, Any]], fields: tuple[tuple[str, str], ...]) -> Rows:
    """(headers, rows) of `items`, a column per (header, key)."""
    headers = tuple(h for h, _k in fields)
    return headers, [tuple(item.get(k) for _h, k in fields) for item in items]


class _Command:
    """Turns the API's errors into OSC's CommandError (a message, exit code 1)."""

    def run(self, parsed_args: argparse.Namespace) -> int:
        from osc_lib import exceptions

        try:
            return super().run(parsed_args)  # type: ignore[misc]
        except FleetApiError as exc:
            raise exceptions.CommandError(str(exc)) from exc


def _region_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cloud", metavar="<cloud>", help="Only this cloud (as StackFleet names it)"
    )
    parser.add_argument("--region", metavar="<region>", help="Only this region")


class ShowSummary(_Command, command.ShowOne):
    """The fleet at a glance: hypervisors up/down, capacity used, servers by status."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _region_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Any, Any]:
        body = _client(self).get("/v1/summary", cloud=parsed_args.cloud, region=parsed_args.region)
        hypervisors = body.get("hypervisors", {})
        data: dict[str, Any] = {
            "clouds": ", ".join(body.get("clouds", [])),
            "hypervisors_total": hypervisors.get("total"),
            "hypervisors_up": hypervisors.get("up"),
            "hypervisors_down": hypervisors.get("down"),
        }
        for resource, figures in body.get("capacity", {}).items():
            data[f"{resource}_used"] = figures.get("used")
            data[f"{resource}_capacity"] = figures.get("capacity")
            data[f"{resource}_percent"] = figures.get("percent")
        for status, count in sorted(body.get("servers_by_status", {}).items()):
            data[f"servers_{status.lower()}"] = count
        data["resources"] = ", ".join(f"{k} {v}" for k, v in sorted(body.get("counts", {}).items()))
        return tuple(data), tuple(data.values())


HOST_FIELDS = (
    ("Name", "name"),
    ("Host", "host"),
    ("State", "state"),
    ("Enabled", "enabled"),
    ("vCPU used", "vcpu_used"),
    ("vCPU capacity", "vcpu_capacity"),
    ("RAM MB used", "memory_mb_used"),
    ("RAM MB capacity", "memory_mb_capacity"),
    ("Disk GB used", "disk_gb_used"),
    ("Disk GB capacity", "disk_gb_capacity"),
    ("Region", "region"),
)


class ListHosts(_Command, command.Lister):
    """Hypervisors with their state and Placement allocation."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _region_options(parser)
        parser.add_argument("--state", metavar="<up|down>", help="Only hosts in this state")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        items = _client(self).pages(
            "/v1/resources", kind="hypervisor", cloud=parsed_args.cloud, region=parsed_args.region
        )
        if parsed_args.state:
            items = (i for i in items if i.get("state") == parsed_args.state)
        return _rows(items, HOST_FIELDS)


SERVER_FIELDS = (
    ("ID", "id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Host", "host"),
    ("Flavor", "flavor_name"),
    ("Project", "project_id"),
    ("Region", "region"),
)


class ListServers(_Command, command.Lister):
    """Servers of every project, as StackFleet last saw them."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _region_options(parser)
        parser.add_argument("--status", metavar="<status>", help="Only servers in this status")
        parser.add_argument("--host", metavar="<host>", help="Only servers on this compute host")
        parser.add_argument("--project", metavar="<project-id>", help="Only this project's")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        items = _client(self).pages(
            "/v1/resources", kind="server", cloud=parsed_args.cloud, region=parsed_args.region
        )
        wanted = {
            "status": parsed_args.status,
            "host": parsed_args.host,
            "project_id": parsed_args.project,
        }
        wanted = {k: v for k, v in wanted.items() if v}
        selected = (i for i in items if all(i.get(k) == v for k, v in wanted.items()))
        return _rows(selected, SERVER_FIELDS)


FINDING_FIELDS = (
    ("ID", "id"),
    ("Policy", "policy"),
    ("Severity", "severity"),
    ("Status", "status"),
    ("Kind", "kind"),
    ("Resource", "resource_name"),
    ("Resource ID", "resource_id"),
    ("Opened", "opened_at"),
)


class ListFindings(_Command, command.Lister):
    """Policy findings (open by default)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--status", metavar="<open|resolved>", help="open (default) or resolved"
        )
        parser.add_argument("--policy", metavar="<policy>", help="Only this policy's")
        parser.add_argument("--kind", metavar="<kind>", help="Only this resource kind")
        parser.add_argument("--cloud", metavar="<cloud>", help="Only this cloud")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        items = _client(self).pages(
            "/v1/findings",
            page_size=500,
            status=parsed_args.status,
            policy=parsed_args.policy,
            kind=parsed_args.kind,
            cloud=parsed_args.cloud,
        )
        return _rows(items, FINDING_FIELDS)


class ListAlerts(_Command, command.Lister):
    """Alerts (firing by default): from policies, hardware, databases, RabbitMQ and
    external sources."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--status", metavar="<status>", help="firing (default) or resolved")
        parser.add_argument("--limit", metavar="<n>", type=int, default=None, help="At most n")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        body = _client(self).get("/v1/alerts", status=parsed_args.status, limit=parsed_args.limit)
        items = [
            {
                **alert,
                "summary": (alert.get("annotations") or {}).get("summary"),
                "host": (alert.get("labels") or {}).get("host"),
            }
            for alert in body.get("items", [])
        ]
        fields = (
            ("ID", "id"),
            ("Alert", "alertname"),
            ("Severity", "severity"),
            ("State", "state"),
            ("Source", "source"),
            ("Summary", "summary"),
            ("Since", "starts_at"),
        )
        return _rows(items, fields)


class ShowWaste(_Command, command.Lister):
    """What the waste pack would reclaim, per policy: count, vCPU, RAM, disk, volume
    GB, floating IPs."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--pack", metavar="<pack>", help="Policy pack (default: waste)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        body = _client(self).get("/v1/reports/waste", pack=parsed_args.pack)
        fields = (
            ("Policy", "policy"),
            ("Resource", "resource"),
            ("Count", "count"),
            ("vCPU", "vcpus"),
            ("RAM GB", "ram_gb"),
            ("Disk GB", "disk_gb"),
            ("Volume GB", "volume_gb"),
            ("Floating IPs", "floating_ips"),
            ("Ports", "ports"),
            ("Image GB", "image_gb"),
        )
        return _rows(body.get("items", []), fields)


class ShowCompliance(_Command, command.Lister):
    """Compliance of each policy of the security and HA packs: checked, passing,
    failing."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--pack", metavar="<pack>", help="Only this pack")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        body = _client(self).get("/v1/reports/compliance", pack=parsed_args.pack)
        fields = (
            ("Policy", "policy"),
            ("Severity", "severity"),
            ("Resource", "resource"),
            ("Checked", "checked"),
            ("Passing", "passing"),
            ("Failing", "failing"),
            ("Status", "status"),
        )
        return _rows(body.get("items", []), fields)


class ListLeases(_Command, command.Lister):
    """Leases: resources marked for reclamation, their stage and next step."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--resource", metavar="<id-or-name>", help="Only this resource's")
        parser.add_argument("--stage", metavar="<stage>", help="marked, stopped, done, cancelled")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        body = _client(self).get(
            "/v1/leases", resource=parsed_args.resource, stage=parsed_args.stage
        )
        fields = (
            ("ID", "id"),
            ("Policy", "policy"),
            ("Kind", "kind"),
            ("Resource", "resource_name"),
            ("Resource ID", "resource_id"),
            ("Stage", "stage"),
            ("Next step", "next_at"),
            ("Extended days", "extended_days"),
        )
        return _rows(body.get("items", []), fields)


class ShowCapacity(_Command, command.Lister):
    """Capacity per region: allocation, and whether it survives losing its largest
    host (N+1)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _region_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        body = _client(self).get("/v1/capacity", cloud=parsed_args.cloud, region=parsed_args.region)
        items = []
        for region in body.get("regions", []):
            n1 = region.get("n_plus_one") or {}
            items.append(
                {
                    **region,
                    "n_plus_one_survives": n1.get("survives"),
                    "n_plus_one_lost_host": n1.get("lost_host"),
                }
            )
        fields = (
            ("Cloud", "cloud"),
            ("Region", "region"),
            ("Hosts", "hosts"),
            ("Usable hosts", "usable_hosts"),
            ("vCPU %", "vcpu_percent"),
            ("pCPU %", "pcpu_percent"),
            ("RAM %", "memory_mb_percent"),
            ("Disk %", "disk_gb_percent"),
            ("N+1 survives", "n_plus_one_survives"),
            ("Largest host", "n_plus_one_lost_host"),
        )
        return _rows(items, fields)


class ShowHealth(_Command, command.Lister):
    """StackFleet's own health: its store (GET /healthz) and each scheduled job
    (GET /v1/jobs)."""

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        client = _client(self)
        health = client.get("/healthz")
        items = [
            {
                "name": "store",
                "status": health.get("store"),
                "runs": None,
                "failures": None,
                "last_success": None,
                "last_error": None,
            }
        ]
        items += client.get("/v1/jobs").get("items", [])
        fields = (
            ("Name", "name"),
            ("Status", "status"),
            ("Runs", "runs"),
            ("Failures", "failures"),
            ("Last success", "last_success"),
            ("Last error", "last_error"),
        )
        return _rows(items, fields)

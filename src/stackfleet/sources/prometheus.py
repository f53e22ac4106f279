"""Reading server and hypervisor usage from a Prometheus server's HTTP query API.

Two exporters are read when the operator's Prometheus scrapes them:

- the **libvirt exporter** on each compute host (per domain: CPU time, vCPUs, memory,
  block and interface byte counters). prometheus-libvirt-exporter (the one Kolla
  deploys) labels every series with the libvirt ``domain`` name (``instance-0000002a``)
  and gives the Nova server UUID as ``instance_id`` on ``libvirt_domain_openstack_info``;
  StackFleet joins the two by default. Exporters that put the UUID on every series
  (label ``uuid`` in some forks) are read with ``server_label: uuid`` and
  ``info_metric: null``.
- **node_exporter** on each hypervisor (CPU seconds by mode, MemTotal/MemAvailable);
  its ``instance`` label (``host:9100``) is mapped to the hypervisor's name with a
  regular expression.

Rates are computed by Prometheus (``rate()`` over ``rate_window``), so one query answers
for the whole fleet. ``query_range`` with a one-hour step gives hourly means for a
history backfill. Errors a user can meet (unreachable, not JSON, ``status: error``)
become `PrometheusError` with the server's own error text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackfleet.core.errors import StackFleetError
from stackfleet.core.redaction import redact_text, redact_url

log = logging.getLogger(__name__)


class PrometheusError(StackFleetError):
    """A Prometheus query failed: unreachable, refused, or answered with an error."""


class PrometheusSettings(BaseModel):
    """Where the Prometheus is and how its series map to servers and hypervisors."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Base URL, e.g. http://prometheus.example:9090.")
    username: str | None = Field(default=None, description="Basic auth user.")
    password: str | None = Field(default=None, description="Basic auth password.")
    bearer_token: str | None = Field(default=None, description="Bearer token.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per query.")
    verify: bool | str = Field(
        default=True, description="Verify TLS: true, false, or a CA bundle path."
    )
    rate_window: str = Field(
        default="5m", description="Range of rate() for current values, e.g. 5m."
    )
    server_label: str = Field(
        default="instance_id",
        description="Label holding the Nova server UUID (on info_metric when set).",
    )
    info_metric: str | None = Field(
        default="libvirt_domain_openstack_info",
        description="Series carrying server_label, joined on (instance, domain); "
        "null when every libvirt series carries server_label itself.",
    )
    host_label: str = Field(
        default="instance", description="node_exporter label naming the hypervisor."
    )
    host_pattern: str = Field(
        default=r"^\[?(?P<host>[^\]:]+)",
        description="Regex on host_label; group `host` (or the first group) is the "
        "hypervisor name (matched in full, or as the short name before the first dot).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("rate_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not re.fullmatch(r"\d+[smhd]", value):
            raise ValueError("must be a Prometheus duration such as 5m")
        return value

    @field_validator("host_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and (ts, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """A small client of the query API (`/api/v1/query`, `/api/v1/query_range`)."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        if settings.username is not None:
            self.session.auth = (settings.username, settings.password or "")
        if settings.bearer_token:
            self.session.headers["Authorization"] = f"Bearer {settings.bearer_token}"
        self.session.verify = settings.verify

    def close(self) -> None:
        self.session.close()

    def _call(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.settings.url}{path}"
        shown = redact_url(self.settings.url)
        try:
            # POST with a form body: long PromQL expressions do not fit a URL
            response = self.session.post(url, data=params, timeout=self.settings.timeout)
        except requests.Timeout as exc:
            raise PrometheusError(
                f"Prometheus at {shown} did not answer within {self.settings.timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {shown}: {exc.__class__.__name__}: "
                f"{redact_text(str(exc))}"
            ) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus at {shown} answered HTTP {response.status_code} "
                f"with a body that is not JSON (is the URL the Prometheus server?): "
                f"{(response.text or '')[:200]!r}"
            ) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            kind = body.get("errorType") if isinstance(body, dict) else None
            raise PrometheusError(
                f"Prometheus query failed (HTTP {response.status_code}"
                f"{', ' + str(kind) if kind else ''}): {error or body!r}"
            )
        data = body.get("data") or {}
        return data

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """An instant query: one point per series."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._series(self._call("/api/v1/query", params), expr)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query: points every `step` seconds from `start` to `end`."""
        params = {
            "query": expr,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        return self._series(self._call("/api/v1/query_range", params), expr)

    @staticmethod
    def _series(data: Any, expr: str) -> list[Series]:
        kind = data.get("resultType")
        result = data.get("result") or []
        if kind == "vector":
            return [
                Series(item.get("metric") or {}, [_point(item.get("value"))])
                for item in result
                if _finite(item.get("value"))
            ]
        if kind == "matrix":
            return [
                Series(
                    item.get("metric") or {},
                    [_point(v) for v in item.get("values") or [] if _finite(v)],
                )
                for item in result
            ]
        if kind == "scalar":
            return [Series({}, [_point(result)])] if _finite(result) else []
        raise PrometheusError(f"unexpected result type {kind!r} for {expr!r}")


def _point(pair: Any) -> tuple[float, float]:
    return float(pair[0]), float(pair[1])


def _finite(pair: Any) -> bool:
    try:
        value = float(pair[1])
    except (TypeError, ValueError, IndexError):
        return False
    return value == value and value not in (float("inf"), float("-inf"))


# -- the queries -----------------------------------------------------------------------

MIB = 1048576


def server_queries(settings: PrometheusSettings, window: str | None = None) -> dict[str, str]:
    """PromQL per server metric (StackFleet's names), each summed per server UUID."""
    w = window or settings.rate_window
    sid = settings.server_label

    def per_server(expr: str) -> str:
        if settings.info_metric:
            return (
                f"sum by ({sid}) ({expr} * on (instance, domain) group_left ({sid}) "
                f"{settings.info_metric})"
            )
        return f"sum by ({sid}) ({expr})"

    return {
        "cpu_util": (
            f"100 * {per_server(f'rate(libvirt_domain_info_cpu_time_seconds_total[{w}])')}"
            f" / {per_server('libvirt_domain_info_virtual_cpus')}"
        ),
        "memory_used_mb": f"{per_server('libvirt_domain_info_memory_usage_bytes')} / {MIB}",
        "memory_max_mb": f"{per_server('libvirt_domain_info_maximum_memory_bytes')} / {MIB}",
        "disk_read_bps": per_server(f"rate(libvirt_domain_block_stats_read_bytes_total[{w}])"),
        "disk_write_bps": per_server(f"rate(libvirt_domain_block_stats_write_bytes_total[{w}])"),
        "net_rx_bps": per_server(f"rate(libvirt_domain_interface_stats_receive_bytes_total[{w}])"),
        "net_tx_bps": per_server(f"rate(libvirt_domain_interface_stats_transmit_bytes_total[{w}])"),
    }


def host_queries(settings: PrometheusSettings, window: str | None = None) -> dict[str, str]:
    """PromQL per hypervisor metric, each by the node_exporter host label."""
    w = window or settings.rate_window
    label = settings.host_label
    return {
        "cpu_util": (
            f'100 * (1 - avg by ({label}) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}])))'
        ),
        "memory_used_mb": (
            f"sum by ({label}) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)"
            f" / {MIB}"
        ),
        "memory_used_percent": (
            f"100 * (1 - sum by ({label}) (node_memory_MemAvailable_bytes) "
            f"/ sum by ({label}) (node_memory_MemTotal_bytes))"
        ),
    }


def host_name(settings: PrometheusSettings, labels: dict[str, str]) -> str | None:
    """The hypervisor name a node_exporter series belongs to, from `host_label`."""
    raw = labels.get(settings.host_label)
    if not raw:
        return None
    match = re.search(settings.host_pattern, raw)
    if not match:
        return None
    groups = match.groupdict()
    if groups.get("host"):
        return groups["host"]
    return match.group(1) if match.groups() else match.group(0)

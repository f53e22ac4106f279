"""Reading BMCs over Redfish with sushy, one at a time or as a parallel sweep.

sushy gives the HTTP connection, authentication (HTTP basic or a Redfish session), the
service root and the ComputerSystem (power state, health). The thermal and power
documents are read as JSON through the same sushy connection and parsed by
`documents`: sushy 5 models Thermal and the PowerSupplies of Power, but not
PowerControl (the power draw), PowerSubsystem, ThermalSubsystem or EnvironmentMetrics,
and one parser for every shape keeps legacy and current BMCs alike.

Every failure becomes a `BmcResult` with a status and a message that says what to fix;
`read_bmc` never raises for a BMC's fault and never invents a zero reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc
from sushy.connector import Connector

from stackfleet.model.hardware import (
    AUTH_FAILED,
    BAD_RESPONSE,
    ERROR,
    NOT_FOUND,
    OK,
    TIMEOUT,
    UNREACHABLE,
    BmcReading,
    TemperatureReading,
)
from stackfleet.sources.redfish import documents as rf
from stackfleet.sources.redfish.bmc_map import DEFAULT_TIMEOUT, BmcTarget

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32
# Redfish $expand of one level: a collection's members inline, one request instead of N
EXPAND_ONE_LEVEL = "$expand=.($levels=1)"


@dataclass
class BmcResult:
    """How reading one BMC went: `status` OK with a `reading`, or why not in `error`."""

    target: BmcTarget
    status: str
    reading: BmcReading | None = None
    error: str | None = None
    seconds: float = 0.0
    requests: int = 0
    finished_at: float = 0.0


class _BudgetExceeded(Exception):
    """The per-BMC time budget ran out between two requests."""


class _NotRedfish(Exception):
    """A document was not the JSON object Redfish promises."""


class BudgetConnector(Connector):
    """A sushy connector that gives every request only what is left of one BMC's time
    budget, and counts requests. sushy retries transient errors with sleeps of its own;
    one attempt per request keeps a dead BMC from holding a worker for long."""

    def __init__(
        self, url: str, verify: bool | str, deadline: float, request_timeout: float
    ) -> None:
        super().__init__(
            url,
            verify=verify,
            # sushy reads `retries or 3`: 1 is the smallest it honours (one attempt)
            server_side_retries=1,
            server_side_retries_delay=0,
            default_request_timeout=request_timeout,
        )
        self.deadline = deadline
        self.requests = 0

    def _op(
        self,
        method: str,
        path: str = "",
        data: Any = None,
        headers: dict[str, str] | None = None,
        blocking: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        # sushy's public get/post/... all funnel through _op, so does its own retry
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _BudgetExceeded()
        self.requests += 1
        allowed = min(timeout or self._default_request_timeout, remaining)
        return super()._op(
            method, path, data=data, headers=headers, blocking=blocking, timeout=allowed, **kwargs
        )

    def json(self, path: str) -> rf.Doc:
        """GET `path` and return its JSON object; _NotRedfish if it is not one."""
        response = self.get(path=path)
        try:
            body = response.json()
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "no content type")
            raise _NotRedfish(f"GET {path} answered {kind}, not JSON") from exc
        if not isinstance(body, dict):
            raise _NotRedfish(f"GET {path} answered a JSON {type(body).__name__}, not an object")
        return body


def read_bmc(target: BmcTarget, timeout: float | None = None) -> BmcResult:
    """Read one BMC within `timeout` seconds (the target's own timeout wins); never
    raises for anything the BMC does."""
    started = time.monotonic()
    budget = target.timeout or timeout or DEFAULT_TIMEOUT
    result = BmcResult(target=target, status=ERROR)
    if target.problem:
        result.error = target.problem
        result.status = AUTH_FAILED
        result.finished_at = time.time()
        return result
    connector = BudgetConnector(target.base_url, target.verify, started + budget, budget)
    where = f"{target.address}"
    try:
        result.reading = _read(connector, target)
        result.status = OK
    except _BudgetExceeded:
        result.status, result.error = (
            TIMEOUT,
            f"{where} did not finish answering within {budget:g} s",
        )
    except sushy_exc.AccessError as exc:
        result.status = AUTH_FAILED
        user = target.username or "(none)"
        result.error = (
            f"{where} rejected the credentials of user {user!r} (HTTP {exc.status_code}); "
            f"fix them in {target.source or 'the BMC map'}"
        )
    except sushy_exc.ResourceNotFoundError as exc:
        result.status = NOT_FOUND
        result.error = (
            f"{where}: {_short(str(exc))} (HTTP 404): check system_id in "
            f"{target.source or 'the BMC map'}"
        )
    except sushy_exc.HTTPError as exc:
        result.status = BAD_RESPONSE
        result.error = f"{where}: {_short(str(exc))}"
    except sushy_exc.ConnectionError as exc:
        result.status, result.error = _connection_failure(where, exc, budget)
    except (_NotRedfish, sushy_exc.MissingAttributeError, sushy_exc.MalformedAttributeError) as exc:
        result.status, result.error = BAD_RESPONSE, f"{where}: not a Redfish answer: {exc}"
    except sushy_exc.UnknownDefaultError:
        result.status = NOT_FOUND
        result.error = (
            f"{where} has several systems: set system_id in {target.source or 'the BMC map'}"
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # sushy parses documents as it builds resources; garbage shows up as these
        result.status, result.error = BAD_RESPONSE, f"{where}: not a Redfish answer ({exc})"
    except Exception as exc:  # one BMC's surprise must not end a sweep of hundreds
        log.exception("reading BMC %s failed", where)
        result.status, result.error = ERROR, f"{where}: {type(exc).__name__}: {exc}"
    finally:
        # the connector's requests session pools the BMC's sockets: one per sweep would
        # otherwise be left open until the garbage collector finds it
        connector.close()
    result.seconds = time.monotonic() - started
    result.requests = connector.requests
    result.finished_at = time.time()
    return result


def _connection_failure(
    where: str, exc: sushy_exc.ConnectionError, budget: float
) -> tuple[str, str]:
    cause: Any = exc.__cause__ or exc.__context__
    text = str(exc)
    if isinstance(cause, requests.exceptions.Timeout) or "timed out" in text.lower():
        return TIMEOUT, f"{where} did not answer within {budget:g} s"
    if isinstance(cause, requests.exceptions.SSLError) or "SSL" in text:
        return (
            UNREACHABLE,
            f"{where}: TLS failed ({_short(text)}); set verify: false or a CA bundle",
        )
    if "refused" in text.lower():
        return UNREACHABLE, f"{where} refused the connection"
    return UNREACHABLE, f"{where} is unreachable ({_short(text)})"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read(conn: BudgetConnector, target: BmcTarget) -> BmcReading:
    if target.auth == "session":
        authenticator: sushy_auth.AuthBase = sushy_auth.SessionOrBasicAuth(
            username=target.username, password=target.password
        )
    else:
        authenticator = sushy_auth.BasicAuth(username=target.username, password=target.password)
    root = sushy.Sushy(
        target.base_url, auth=authenticator, connector=conn, root_prefix=target.root_prefix
    )
    try:
        return _read_system(conn, root, target)
    finally:
        # a Redfish session holds one of the BMC's few session slots: give it back
        authenticator.close()


def _read_system(conn: BudgetConnector, root: sushy.Sushy, target: BmcTarget) -> BmcReading:
    system = root.get_system(target.system_path)
    reading = BmcReading(
        power_state=_enum_text(system.power_state),
        health=_enum_text(system.status.health_rollup or system.status.health)
        if system.status
        else None,
    )
    chassis_path = _chassis_path(conn, system.json, root)
    if chassis_path is None:
        return reading
    chassis = conn.json(chassis_path)
    expand = _supports_expand(root.json)
    _read_thermal(conn, chassis, reading, expand)
    _read_power(conn, chassis, reading, expand)
    # gauges are labelled by name: two sensors may not share one
    reading.temperatures = rf.with_unique_names(reading.temperatures)
    reading.fans = rf.with_unique_names(reading.fans)
    reading.psus = rf.with_unique_names(reading.psus)
    return reading


def _enum_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _chassis_path(conn: BudgetConnector, system: rf.Doc, root: sushy.Sushy) -> str | None:
    links = system.get("Links") if isinstance(system.get("Links"), dict) else {}
    for entry in (links or {}).get("Chassis") or []:
        if isinstance(entry, dict) and isinstance(entry.get("@odata.id"), str):
            return str(entry["@odata.id"])
    collection = rf.link(root.json, "Chassis")
    if collection is None:
        return None
    first = rf.members(conn.json(collection))
    return str(first[0]["@odata.id"]) if first and "@odata.id" in first[0] else None


def _supports_expand(service_root: rf.Doc) -> bool:
    features = service_root.get("ProtocolFeaturesSupported")
    expand = features.get("ExpandQuery") if isinstance(features, dict) else None
    return isinstance(expand, dict) and bool(expand.get("Levels") or expand.get("ExpandAll"))


def _collection(conn: BudgetConnector, path: str, expand: bool) -> list[rf.Doc]:
    """The members of a collection as documents: one expanded GET when the service
    supports $expand, else one GET per member."""
    if expand:
        expanded = rf.members(conn.json(f"{path}?{EXPAND_ONE_LEVEL}"))
        if all(len(m) > 1 for m in expanded):  # references only: $expand was ignored
            return expanded
    refs = rf.members(conn.json(path))
    return [conn.json(str(m["@odata.id"])) for m in refs if "@odata.id" in m]


def _read_thermal(
    conn: BudgetConnector, chassis: rf.Doc, reading: BmcReading, expand: bool
) -> None:
    thermal = rf.link(chassis, "Thermal")
    if thermal is not None:
        doc = conn.json(thermal)
        reading.temperatures = rf.legacy_temperatures(doc)
        reading.fans = rf.legacy_fans(doc)
        return
    subsystem = rf.link(chassis, "ThermalSubsystem")
    if subsystem is None:
        return
    doc = conn.json(subsystem)
    metrics = rf.link(doc, "ThermalMetrics")
    if metrics is not None:
        reading.temperatures = rf.thermal_metrics_temperatures(conn.json(metrics))
    fans = rf.link(doc, "Fans")
    if fans is not None:
        reading.fans = rf.subsystem_fans(_collection(conn, fans, expand))


def _read_power(conn: BudgetConnector, chassis: rf.Doc, reading: BmcReading, expand: bool) -> None:
    power_path = rf.link(chassis, "Power")
    power: rf.Doc = {}
    if power_path is not None:
        power = conn.json(power_path)
        reading.power_watts, reading.power_source = rf.power_control_watts(power)
        reading.power_limit_watts = rf.power_control_limit(power)
        reading.psus = rf.legacy_psus(power)
        reading.psu_redundancy = rf.psu_redundancy(reading.psus, rf.redundancy_groups(power))
    else:
        subsystem_path = rf.link(chassis, "PowerSubsystem")
        if subsystem_path is not None:
            subsystem = conn.json(subsystem_path)
            supplies = rf.link(subsystem, "PowerSupplies")
            if supplies is not None:
                reading.psus = rf.subsystem_psus(_collection(conn, supplies, expand))
            reading.psu_redundancy = rf.psu_redundancy(
                reading.psus, rf.redundancy_groups(subsystem)
            )
    if reading.power_watts is None:
        env_path = rf.link(chassis, "EnvironmentMetrics")
        if env_path is not None:
            env = conn.json(env_path)
            watts, limit = rf.environment_power(env)
            if watts is not None:
                reading.power_watts, reading.power_source = watts, "EnvironmentMetrics.PowerWatts"
            reading.power_limit_watts = reading.power_limit_watts or limit
            _environment_temperature(env, reading)
    if reading.power_watts is None and power:
        watts = rf.legacy_psu_input_watts(power)
        if watts is not None:
            reading.power_watts = watts
            reading.power_source = "Power.PowerSupplies.PowerInputWatts"
        else:
            reading.power_watts, reading.power_source = rf.oem_power_watts(power, chassis)


def _environment_temperature(env: rf.Doc, reading: BmcReading) -> None:
    # only when nothing better came from Thermal/ThermalMetrics
    if reading.temperatures:
        return
    entry = env.get("TemperatureCelsius")
    celsius = rf.number(entry.get("Reading")) if isinstance(entry, dict) else None
    if celsius is not None:
        reading.temperatures = [TemperatureReading("Chassis", celsius)]


def sweep(
    targets: Sequence[BmcTarget],
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    on_result: Callable[[BmcResult], None] | None = None,
) -> list[BmcResult]:
    """Read every target in parallel (at most `concurrency` at once, each within its
    timeout); results in the order of `targets`. A failing BMC never stops the others."""
    if not targets:
        return []

    def one(target: BmcTarget) -> BmcResult:
        result = read_bmc(target, timeout)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(targets))), thread_name_prefix="redfish"
    ) as pool:
        return list(pool.map(one, targets))


@dataclass
class PowerReading:
    """A ComputerSystem's power state and health only (what health and fencing need):
    one or two requests instead of a whole sweep's."""

    target: BmcTarget
    status: str
    power_state: str | None = None
    health: str | None = None
    error: str | None = None


def open_system(target: BmcTarget, timeout: float | None = None) -> tuple[Any, BudgetConnector]:
    """sushy's ComputerSystem of `target` and the connector to close afterwards (raises
    sushy's errors)."""
    budget = target.timeout or timeout or DEFAULT_TIMEOUT
    connector = BudgetConnector(target.base_url, target.verify, time.monotonic() + budget, budget)
    authenticator = sushy_auth.BasicAuth(username=target.username, password=target.password)
    try:
        root = sushy.Sushy(
            target.base_url,
            auth=authenticator,
            connector=connector,
            root_prefix=target.root_prefix,
        )
        return root.get_system(target.system_path), connector
    except BaseException:
        connector.close()
        raise


def read_power(target: BmcTarget, timeout: float | None = None) -> PowerReading:
    """The system's power state and health; never raises for the BMC's faults (the
    status and error say what went wrong, as `read_bmc`)."""
    if target.problem:
        return PowerReading(target, AUTH_FAILED, error=target.problem)
    budget = target.timeout or timeout or DEFAULT_TIMEOUT
    try:
        system, connector = open_system(target, timeout)
    except _BudgetExceeded:
        return PowerReading(target, TIMEOUT, error=f"{target.address} did not answer in time")
    except sushy_exc.AccessError as exc:
        return PowerReading(
            target,
            AUTH_FAILED,
            error=f"{target.address} rejected the credentials (HTTP {exc.status_code})",
        )
    except sushy_exc.ConnectionError as exc:
        status, error = _connection_failure(target.address, exc, budget)
        return PowerReading(target, status, error=error)
    except sushy_exc.SushyError as exc:
        return PowerReading(target, BAD_RESPONSE, error=f"{target.address}: {_short(str(exc))}")
    except Exception as exc:  # one BMC's surprise is an unknown, never a crash
        return PowerReading(target, ERROR, error=f"{target.address}: {type(exc).__name__}: {exc}")
    try:
        status = system.status
        return PowerReading(
            target,
            OK,
            power_state=_power_text(system.power_state),
            health=_enum_text(status.health_rollup or status.health) if status else None,
        )
    finally:
        connector.close()


def _power_text(value: Any) -> str | None:
    """sushy's power state ('on', 'off', ...) as Redfish spells it (On, Off)."""
    text = _enum_text(value)
    if text is None:
        return None
    return {
        "on": "On",
        "off": "Off",
        "powering on": "PoweringOn",
        "powering off": "PoweringOff",
    }.get(text.lower(), text)

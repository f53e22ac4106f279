"""Simulated BMCs: Redfish services whose readings move, and can be made to fail.

sushy-tools emulates systems and power actions but serves a static Thermal and no
Power at all; this module serves what a monitoring sweep reads, after the DMTF schemas
and their public mockups, in three shapes found on real BMCs:

- ``legacy``: Chassis/1/Thermal and Chassis/1/Power (PowerControl, PowerSupplies,
  Redundancy);
- ``current``: Chassis/1/ThermalSubsystem (ThermalMetrics, Fans), PowerSubsystem
  (PowerSupplies, PowerSupplyRedundancy) and EnvironmentMetrics (PowerWatts);
- ``oem``: legacy resources whose PowerControl gives no PowerConsumedWatts, with the
  draw only in the HPE iLO OEM field of each supply (Oem.Hpe.AveragePowerOutputWatts).

Each BMC listens on its own loopback port with the service root at /redfish/v1, as a
real BMC does (sushy wants one base URL per BMC). Readings wobble a little every second
like real sensors; faults are set through the Python API (`SimulatedBmc.set`) or the
control port: ``GET /_sim/bmcs``, ``GET|PATCH /_sim/bmcs/{name}`` with any of
inlet_celsius, cpu_celsius, power_watts, power_limit_watts, power_state, failed_psus,
frozen, unreachable, garbage, health.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
import yaml

from stackfleet.simulator.server import SimulatorError, _bind, stop_serving
from stackfleet.simulator.state import CloudState

log = logging.getLogger(__name__)

FLAVORS = ("legacy", "current", "oem")
ROOT = "/redfish/v1"
CHASSIS = f"{ROOT}/Chassis/1"
# how long an "unreachable" BMC holds a request before giving up on it
HANG_SECONDS = 30.0
STANDBY_WATTS = 9.0

Doc = dict[str, Any]


@dataclass
class SimulatedBmc:
    """One simulated BMC with one system in one chassis. Change it with `set`."""

    name: str
    system_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    flavor: str = "legacy"
    username: str = "admin"
    password: str = "redfish"
    power_state: str = "On"
    health: str = "OK"
    inlet_celsius: float = 22.0
    cpu_celsius: float = 52.0
    power_watts: float = 320.0
    power_limit_watts: float | None = None
    fan_rpm: float = 6200.0
    psus: int = 2
    failed_psus: list[str] = field(default_factory=list)
    # values stop moving (and stay as they were when frozen)
    frozen: bool = False
    # requests hang (until HANG_SECONDS or the client gives up)
    unreachable: bool = False
    # every answer is an HTML page with status 200
    garbage: bool = False
    seed: int = 0
    frozen_at: float | None = None
    # every ComputerSystem.Reset accepted, in order (a fence is counted here)
    resets: list[str] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    SETTABLE = (
        "power_state",
        "health",
        "inlet_celsius",
        "cpu_celsius",
        "power_watts",
        "power_limit_watts",
        "fan_rpm",
        "failed_psus",
        "frozen",
        "unreachable",
        "garbage",
    )

    def set(self, **changes: Any) -> None:
        """Change readings or faults, e.g. ``set(inlet_celsius=38, failed_psus=["PSU2"])``.
        ValueError names an unknown setting."""
        with self.lock:
            for key, value in changes.items():
                if key not in self.SETTABLE:
                    raise ValueError(
                        f"unknown BMC setting {key!r}; known: {', '.join(self.SETTABLE)}"
                    )
                if key == "frozen":
                    self.frozen_at = time.time() if value else None
                if key == "failed_psus":
                    value = list(value or [])
                    unknown = set(value) - set(self.psu_names)
                    if unknown:
                        raise ValueError(
                            f"no such power supply {sorted(unknown)[0]!r}; "
                            f"known: {', '.join(self.psu_names)}"
                        )
                if key == "power_state" and value not in ("On", "Off"):
                    raise ValueError("power_state must be On or Off")
                setattr(self, key, value)

    def settings(self) -> dict[str, Any]:
        """The settable values and identity, as the control route shows them."""
        return {
            "name": self.name,
            "flavor": self.flavor,
            "system_id": self.system_id,
            "port": self.port,
            **{key: getattr(self, key) for key in self.SETTABLE},
        }

    @property
    def psu_names(self) -> list[str]:
        return [f"PSU{i + 1}" for i in range(self.psus)]

    # -- readings ---------------------------------------------------------------------

    def _clock(self) -> float:
        return self.frozen_at if self.frozen and self.frozen_at is not None else time.time()

    def _wobble(self, at: float, salt: int, amplitude: float) -> float:
        # a new small offset every second, reproducible for a given BMC and second
        second = int(at)
        rng = random.Random(self.seed * 1_000_003 + second * 31 + salt)
        slow = math.sin(at / 60.0 + salt) * amplitude / 2
        return round(slow + rng.uniform(-amplitude / 2, amplitude / 2), 1)

    def readings(self) -> dict[str, Any]:
        """The sensor values right now (or when frozen)."""
        at = self._clock()
        on = self.power_state == "On"
        inlet = self.inlet_celsius + self._wobble(at, 1, 0.4)
        cpu = (self.cpu_celsius if on else self.inlet_celsius + 3) + self._wobble(at, 2, 1.5)
        watts = (self.power_watts if on else STANDBY_WATTS) + self._wobble(at, 3, 12 if on else 1)
        fan = (self.fan_rpm if on else 1800.0) + self._wobble(at, 4, 120)
        healthy = [n for n in self.psu_names if n not in self.failed_psus]
        share = round(watts / len(healthy), 1) if healthy else None
        return {
            "inlet": round(inlet, 1),
            "cpu": [round(cpu, 1), round(cpu - 2.5 + self._wobble(at, 5, 1.0), 1)],
            "board": round(inlet + 9 + self._wobble(at, 6, 0.6), 1),
            "watts": round(max(watts, 0.0), 1),
            "fans": [round(fan + i * 35, 0) for i in range(4)],
            "psu_output": {n: (share if n in healthy else None) for n in self.psu_names},
        }

    @property
    def rollup(self) -> str:
        if self.health != "OK":
            return self.health
        if self.failed_psus:
            return "Warning"
        return "OK"

    # -- documents --------------------------------------------------------------------

    def document(self, path: str, expand: bool) -> Doc | None:
        """The Redfish document at `path`, or None (404)."""
        path = path.rstrip("/") or "/"
        system = f"{ROOT}/Systems/{self.system_id}"
        now = self.readings()
        if path in (ROOT, "/redfish"):
            return self._root() if path == ROOT else {"v1": f"{ROOT}/"}
        if path == f"{ROOT}/Systems":
            return _collection(
                f"{ROOT}/Systems",
                "Computer System Collection",
                [system],
                "ComputerSystemCollection",
            )
        if path == system:
            return self._system(system)
        if path == f"{ROOT}/Chassis":
            return _collection(
                f"{ROOT}/Chassis", "Chassis Collection", [CHASSIS], "ChassisCollection"
            )
        if path == CHASSIS:
            return self._chassis(system)
        legacy = self.flavor in ("legacy", "oem")
        if legacy and path == f"{CHASSIS}/Thermal":
            return self._thermal(now)
        if legacy and path == f"{CHASSIS}/Power":
            return self._power(now)
        if not legacy:
            return self._current(path, now, expand)
        return None

    def _root(self) -> Doc:
        return {
            "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
            "@odata.id": f"{ROOT}/",
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.17.0",
            "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.name)),
            "Vendor": "StackFleet simulator",
            "Product": f"Simulated BMC ({self.flavor})",
            "ProtocolFeaturesSupported": {
                "ExpandQuery": {
                    "ExpandAll": False,
                    "Levels": True,
                    "MaxLevels": 1,
                    "Links": True,
                    "NoLinks": True,
                },
                "FilterQuery": False,
                "SelectQuery": False,
            },
            "Systems": {"@odata.id": f"{ROOT}/Systems"},
            "Chassis": {"@odata.id": f"{ROOT}/Chassis"},
        }

    def _system(self, path: str) -> Doc:
        return {
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "@odata.id": path,
            "Id": self.system_id,
            "Name": self.name,
            "SystemType": "Physical",
            "UUID": self.system_id,
            "HostName": self.name,
            "PowerState": self.power_state,
            "Status": {"State": "Enabled", "Health": self.health, "HealthRollup": self.rollup},
            "Links": {"Chassis": [{"@odata.id": CHASSIS}]},
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": f"{path}/Actions/ComputerSystem.Reset",
                    "ResetType@Redfish.AllowableValues": [
                        "On",
                        "ForceOff",
                        "GracefulShutdown",
                        "ForceRestart",
                    ],
                }
            },
        }

    def _chassis(self, system: str) -> Doc:
        doc: Doc = {
            "@odata.type": "#Chassis.v1_23_0.Chassis",
            "@odata.id": CHASSIS,
            "Id": "1",
            "Name": "Computer System Chassis",
            "ChassisType": "RackMount",
            "PowerState": self.power_state,
            "Status": {"State": "Enabled", "Health": self.health, "HealthRollup": self.rollup},
            "Links": {"ComputerSystems": [{"@odata.id": system}]},
        }
        if self.flavor in ("legacy", "oem"):
            doc["Thermal"] = {"@odata.id": f"{CHASSIS}/Thermal"}
            doc["Power"] = {"@odata.id": f"{CHASSIS}/Power"}
        else:
            doc["ThermalSubsystem"] = {"@odata.id": f"{CHASSIS}/ThermalSubsystem"}
            doc["PowerSubsystem"] = {"@odata.id": f"{CHASSIS}/PowerSubsystem"}
            doc["EnvironmentMetrics"] = {"@odata.id": f"{CHASSIS}/EnvironmentMetrics"}
        return doc

    def _temperatures(self, now: dict[str, Any]) -> list[tuple[str, str, float, float]]:
        """(name, PhysicalContext, reading, upper critical)."""
        return [
            ("Inlet Temp", "Intake", now["inlet"], 42.0),
            ("CPU1 Temp", "CPU", now["cpu"][0], 95.0),
            ("CPU2 Temp", "CPU", now["cpu"][1], 95.0),
            ("System Board Temp", "SystemBoard", now["board"], 75.0),
        ]

    def _thermal(self, now: dict[str, Any]) -> Doc:
        path = f"{CHASSIS}/Thermal"
        return {
            "@odata.type": "#Thermal.v1_7_0.Thermal",
            "@odata.id": path,
            "Id": "Thermal",
            "Name": "Thermal",
            "Temperatures": [
                {
                    "@odata.id": f"{path}#/Temperatures/{i}",
                    "MemberId": str(i),
                    "Name": name,
                    "SensorNumber": i + 1,
                    "Status": {
                        "State": "Enabled",
                        "Health": "OK" if value < critical else "Critical",
                    },
                    "ReadingCelsius": value,
                    "UpperThresholdCritical": critical,
                    "PhysicalContext": context,
                }
                for i, (name, context, value, critical) in enumerate(self._temperatures(now))
            ],
            "Fans": [
                {
                    "@odata.id": f"{path}#/Fans/{i}",
                    "MemberId": str(i),
                    "Name": f"Fan {i + 1}",
                    "PhysicalContext": "Backplane",
                    "Status": {"State": "Enabled", "Health": "OK"},
                    "Reading": rpm,
                    "ReadingUnits": "RPM",
                }
                for i, rpm in enumerate(now["fans"])
            ],
        }

    def _psu_status(self, name: str) -> Doc:
        failed = name in self.failed_psus
        return {"State": "Enabled", "Health": "Critical" if failed else "OK"}

    def _redundancy_health(self) -> str:
        healthy = self.psus - len(self.failed_psus)
        return "OK" if healthy >= 2 else "Critical"

    def _power(self, now: dict[str, Any]) -> Doc:
        path = f"{CHASSIS}/Power"
        oem = self.flavor == "oem"
        control: Doc = {
            "@odata.id": f"{path}#/PowerControl/0",
            "MemberId": "0",
            "Name": "System Power Control",
            "PowerCapacityWatts": 800 * self.psus,
            "PowerLimit": {
                "LimitInWatts": self.power_limit_watts,
                "LimitException": "LogEventOnly",
            },
            "Status": {"State": "Enabled", "Health": "OK"},
        }
        if not oem:
            control["PowerConsumedWatts"] = now["watts"]
        supplies = []
        for i, name in enumerate(self.psu_names):
            output = now["psu_output"][name]
            supply: Doc = {
                "@odata.id": f"{path}#/PowerSupplies/{i}",
                "MemberId": str(i),
                "Name": "HpeServerPowerSupply" if oem else name,
                "Status": self._psu_status(name),
                "PowerSupplyType": "AC",
                "PowerCapacityWatts": 800,
                "LastPowerOutputWatts": output,
            }
            if oem:
                supply["Oem"] = {
                    "Hpe": {
                        "AveragePowerOutputWatts": output,
                        "BayNumber": i + 1,
                        "HotplugCapable": True,
                    }
                }
            supplies.append(supply)
        return {
            "@odata.type": "#Power.v1_7_1.Power",
            "@odata.id": path,
            "Id": "Power",
            "Name": "Power",
            "PowerControl": [control],
            "PowerSupplies": supplies,
            "Redundancy": [
                {
                    "@odata.id": f"{path}#/Redundancy/0",
                    "MemberId": "0",
                    "Name": "PSU Redundancy",
                    "Mode": "N+m",
                    "MaxNumSupported": self.psus,
                    "MinNumNeeded": 1,
                    "RedundancySet": [
                        {"@odata.id": f"{path}#/PowerSupplies/{i}"} for i in range(self.psus)
                    ],
                    "Status": {"State": "Enabled", "Health": self._redundancy_health()},
                }
            ],
        }

    def _current(self, path: str, now: dict[str, Any], expand: bool) -> Doc | None:
        thermal = f"{CHASSIS}/ThermalSubsystem"
        power = f"{CHASSIS}/PowerSubsystem"
        fans = [f"{thermal}/Fans/{i + 1}" for i in range(len(now["fans"]))]
        supplies = [f"{power}/PowerSupplies/{name}" for name in self.psu_names]
        if path == thermal:
            return {
                "@odata.type": "#ThermalSubsystem.v1_3_0.ThermalSubsystem",
                "@odata.id": thermal,
                "Id": "ThermalSubsystem",
                "Name": "Thermal Subsystem",
                "Fans": {"@odata.id": f"{thermal}/Fans"},
                "ThermalMetrics": {"@odata.id": f"{thermal}/ThermalMetrics"},
                "Status": {"State": "Enabled", "Health": "OK"},
            }
        if path == f"{thermal}/ThermalMetrics":
            readings = self._temperatures(now)
            return {
                "@odata.type": "#ThermalMetrics.v1_3_0.ThermalMetrics",
                "@odata.id": path,
                "Id": "ThermalMetrics",
                "Name": "Chassis Thermal Metrics",
                "TemperatureSummaryCelsius": {
                    "Intake": {"Reading": now["inlet"]},
                    "Internal": {"Reading": max(now["cpu"])},
                },
                "TemperatureReadingsCelsius": [
                    {"DeviceName": name, "PhysicalContext": context, "Reading": value}
                    for name, context, value, _critical in readings
                ],
            }
        if path == f"{thermal}/Fans":
            members = [self._fan(i, now) for i in range(len(fans))] if expand else fans
            return _collection(path, "Fan Collection", members, "FanCollection")
        if path in fans:
            return self._fan(fans.index(path), now)
        if path == power:
            return {
                "@odata.type": "#PowerSubsystem.v1_1_0.PowerSubsystem",
                "@odata.id": power,
                "Id": "PowerSubsystem",
                "Name": "Power Subsystem",
                "CapacityWatts": 800 * self.psus,
                "PowerSupplies": {"@odata.id": f"{power}/PowerSupplies"},
                "PowerSupplyRedundancy": [
                    {
                        "RedundancyType": "Failover",
                        "MaxSupportedInGroup": self.psus,
                        "MinNeededInGroup": 1,
                        "RedundancyGroup": [{"@odata.id": s} for s in supplies],
                        "Status": {"State": "Enabled", "Health": self._redundancy_health()},
                    }
                ],
                "Status": {
                    "State": "Enabled",
                    "Health": "OK" if not self.failed_psus else "Warning",
                },
            }
        if path == f"{power}/PowerSupplies":
            members = [self._supply(n) for n in self.psu_names] if expand else supplies
            return _collection(path, "Power Supply Collection", members, "PowerSupplyCollection")
        if path in supplies:
            return self._supply(self.psu_names[supplies.index(path)])
        if path == f"{CHASSIS}/EnvironmentMetrics":
            doc: Doc = {
                "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
                "@odata.id": path,
                "Id": "EnvironmentMetrics",
                "Name": "Chassis Environment Metrics",
                "TemperatureCelsius": {"Reading": now["inlet"]},
                "PowerWatts": {"Reading": now["watts"]},
            }
            if self.power_limit_watts is not None:
                doc["PowerLimitWatts"] = {
                    "SetPoint": self.power_limit_watts,
                    "ControlMode": "Automatic",
                }
            return doc
        return None

    def _fan(self, index: int, now: dict[str, Any]) -> Doc:
        rpm = now["fans"][index]
        return {
            "@odata.type": "#Fan.v1_5_0.Fan",
            "@odata.id": f"{CHASSIS}/ThermalSubsystem/Fans/{index + 1}",
            "Id": str(index + 1),
            "Name": f"Fan {index + 1}",
            "PhysicalContext": "Chassis",
            "Status": {"State": "Enabled", "Health": "OK"},
            "SpeedPercent": {"Reading": round(rpm / 160.0, 1), "SpeedRPM": rpm},
        }

    def _supply(self, name: str) -> Doc:
        return {
            "@odata.type": "#PowerSupply.v1_5_0.PowerSupply",
            "@odata.id": f"{CHASSIS}/PowerSubsystem/PowerSupplies/{name}",
            "Id": name,
            "Name": name,
            "Status": self._psu_status(name),
            "PowerCapacityWatts": 800,
            "LineInputStatus": "LossOfInput" if name in self.failed_psus else "Normal",
        }

    def reset(self, reset_type: str) -> bool:
        """ComputerSystem.Reset; False for a reset type the BMC does not know."""
        if reset_type in ("On", "ForceOn", "ForceRestart", "GracefulRestart", "PowerCycle"):
            self.set(power_state="On")
        elif reset_type in ("ForceOff", "GracefulShutdown"):
            self.set(power_state="Off")
        else:
            return False
        self.resets.append(reset_type)
        return True


def _collection(path: str, name: str, members: list[Any], kind: str) -> Doc:
    return {
        "@odata.type": f"#{kind}.{kind}",
        "@odata.id": path,
        "Name": name,
        "Members@odata.count": len(members),
        "Members": [m if isinstance(m, dict) else {"@odata.id": m} for m in members],
    }


# -- the ASGI application ----------------------------------------------------------------


class RedfishApp:
    """A plain ASGI app (no framework: 500 BMCs answer thousands of requests a sweep)
    that picks the BMC by the port the request came in on."""

    def __init__(self, bmcs: Iterable[SimulatedBmc]) -> None:
        self.bmcs = {b.name: b for b in bmcs}
        self.by_port: dict[int, SimulatedBmc] = {}
        self.control_port = -1
        self.stopping = threading.Event()
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        port = scope["server"][1] if scope.get("server") else None
        if port == self.control_port:
            await self._control(scope, receive, send)
            return
        bmc = self.by_port.get(port) if port is not None else None
        if bmc is None:
            await _send(send, 404, {"error": "no BMC on this port"})
            return
        self.requests += 1
        if bmc.unreachable:
            await self._hang(bmc)
            return
        if bmc.garbage:
            body = b"<html><body><h1>Service Unavailable</h1></body></html>"
            await _send_raw(send, 200, body, b"text/html")
            return
        path = scope["path"]
        if path.rstrip("/") not in (ROOT, "/redfish") and not _authorized(scope, bmc):
            await _send(
                send,
                401,
                _error("Base.1.0.InsufficientPrivilege", "Invalid credentials"),
                [(b"www-authenticate", b'Basic realm="BMC"')],
            )
            return
        if scope["method"] == "POST":
            await self._post(bmc, path, receive, send)
            return
        if scope["method"] != "GET":
            await _send(send, 405, _error("Base.1.0.OperationNotAllowed", "read-only"))
            return
        expand = b"%24expand" in scope["query_string"] or b"$expand" in scope["query_string"]
        doc = bmc.document(path, expand)
        if doc is None:
            await _send(send, 404, _error("Base.1.0.ResourceMissingAtURI", f"{path} not found"))
            return
        await _send(send, 200, doc)

    async def _hang(self, bmc: SimulatedBmc) -> None:
        import asyncio  # noqa: PLC0415 - only the hang needs it

        deadline = time.monotonic() + HANG_SECONDS
        while bmc.unreachable and not self.stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # leave without answering: uvicorn closes the connection

    async def _post(self, bmc: SimulatedBmc, path: str, receive: Any, send: Any) -> None:
        body = await _body(receive)
        if path == f"{ROOT}/Systems/{bmc.system_id}/Actions/ComputerSystem.Reset":
            reset_type = body.get("ResetType") if isinstance(body, dict) else None
            if isinstance(reset_type, str) and bmc.reset(reset_type):
                await _send_raw(send, 204, b"", b"application/json")
                return
            await _send(
                send,
                400,
                _error("Base.1.0.ActionParameterNotSupported", f"ResetType {reset_type!r}"),
            )
            return
        await _send(send, 405, _error("Base.1.0.OperationNotAllowed", "no such action"))

    async def _control(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"].rstrip("/")
        if path == "/_sim/bmcs" and scope["method"] == "GET":
            await _send(send, 200, {"bmcs": [b.settings() for b in self.bmcs.values()]})
            return
        prefix = "/_sim/bmcs/"
        if path.startswith(prefix):
            bmc = self.bmcs.get(path[len(prefix) :])
            if bmc is None:
                await _send(send, 404, {"error": f"no BMC named {path[len(prefix) :]!r}"})
                return
            if scope["method"] == "PATCH":
                body = await _body(receive)
                if not isinstance(body, dict):
                    await _send(send, 400, {"error": "expected a JSON object of settings"})
                    return
                try:
                    bmc.set(**body)
                except (ValueError, TypeError) as exc:
                    await _send(send, 400, {"error": str(exc)})
                    return
            await _send(send, 200, bmc.settings())
            return
        await _send(send, 404, {"error": "control routes: /_sim/bmcs, /_sim/bmcs/{name}"})


def _authorized(scope: dict[str, Any], bmc: SimulatedBmc) -> bool:
    for key, value in scope["headers"]:
        if key == b"authorization" and value[:6].lower() == b"basic ":
            try:
                user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == bmc.username and password == bmc.password
    return False


def _error(code: str, message: str) -> Doc:
    return {"error": {"code": code, "message": message}}


async def _body(receive: Any) -> Any:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except ValueError:
        return None


async def _send(
    send: Any, status: int, doc: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send_raw(send, status, json.dumps(doc).encode(), b"application/json", headers)


async def _send_raw(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"odata-version", b"4.0"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- serving -----------------------------------------------------------------------------


class RedfishSimulator:
    """Simulated BMCs served on loopback from a background thread, one port each, plus
    a control port. ``with RedfishSimulator(bmcs) as sim: sim.bmc_map()``.

    It hands out plain data (a BMC map, addresses, credentials), never the product's
    types: the simulator imports nothing of the product it checks."""

    def __init__(self, bmcs: Iterable[SimulatedBmc], host: str = "127.0.0.1") -> None:
        self.app = RedfishApp(bmcs)
        self.host = host
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def bmcs(self) -> dict[str, SimulatedBmc]:
        return self.app.bmcs

    def bmc(self, name: str) -> SimulatedBmc:
        """The BMC of host `name`; KeyError names the known ones if there is none."""
        try:
            return self.app.bmcs[name]
        except KeyError:
            raise KeyError(f"no simulated BMC {name!r}") from None

    def address(self, name: str) -> str:
        return f"http://{self.host}:{self.bmc(name).port}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.app.control_port}/_sim"

    def start(self, timeout: float = 15.0) -> None:
        """Listen on a free port per BMC and one for control; return once serving."""
        if self._thread is not None:
            raise SimulatorError("the Redfish simulator is already running")
        sockets = [_bind(self.host, 0) for _ in range(len(self.app.bmcs) + 1)]
        self.app.control_port = sockets[0].getsockname()[1]
        for bmc, sock in zip(self.app.bmcs.values(), sockets[1:], strict=True):
            bmc.port = sock.getsockname()[1]
            self.app.by_port[bmc.port] = bmc
        config = uvicorn.Config(
            self.app,
            host=self.host,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # a hung ("unreachable") BMC must not hold shutdown for long
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": sockets}, name="redfish-simulator", daemon=True
        )
        self.app.stopping.clear()
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                self.stop()
                raise SimulatorError("the Redfish simulator did not start")
            time.sleep(0.02)
        log.info("%d simulated BMCs, control at %s", len(self.app.bmcs), self.control_url)

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self.app.stopping.set()
        stop_serving(server, thread, timeout)

    def __enter__(self) -> RedfishSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def bmc_map(self) -> dict[str, Any]:
        """A BMC map (the file `stackfleet hardware` reads) for every simulated BMC."""
        first = next(iter(self.app.bmcs.values()), None)
        return {
            "credentials": {
                "simulated": {
                    "username": first.username if first else "admin",
                    "password": first.password if first else "redfish",
                }
            },
            "defaults": {"credentials": "simulated", "timeout": 5},
            "bmcs": {
                name: {
                    "address": self.address(name),
                    "system_id": f"{ROOT}/Systems/{bmc.system_id}",
                }
                for name, bmc in self.app.bmcs.items()
            },
            # the simulated Ironic nodes carry made-up BMC addresses: every one of them
            # is mapped above, and nothing else may be swept
            "ironic": {"enabled": False},
        }

    def write_bmc_map(self, path: Path | str) -> Path:
        """Write `bmc_map()` as YAML to `path` (owner-readable: it holds a password)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.bmc_map(), sort_keys=False), encoding="utf-8")
        target.chmod(0o600)
        return target


# -- a fleet of BMCs for a simulated cloud -------------------------------------------------


def bmcs_for_cloud(
    state: CloudState, seed: int = 42, limit: int | None = None
) -> list[SimulatedBmc]:
    """One simulated BMC per compute host and per Redfish-driven Ironic node of a
    simulated cloud (Ironic nodes keep their system id), in a mix of the three flavors.
    A few carry faults for the demo: the first compute host runs hot (inlet 37 °C),
    the second has lost a power supply."""
    rng = random.Random(seed)
    bmcs: list[SimulatedBmc] = []
    for region in state.regions.values():
        hosts = sorted(
            {
                s["host"]
                for s in region.compute_services.values()
                if s.get("binary") == "nova-compute"
            }
        )
        for host in hosts:
            bmcs.append(_bmc(host, rng, len(bmcs)))
        for node in region.nodes.values():
            info = node.get("driver_info") or {}
            system = info.get("redfish_system_id")
            if node.get("driver") != "redfish" or not system:
                continue
            bmc = _bmc(node.get("name") or node["uuid"], rng, len(bmcs))
            bmc.system_id = str(system).rstrip("/").rsplit("/", 1)[-1]
            bmc.power_state = "On" if node.get("power_state") == "power on" else "Off"
            bmcs.append(bmc)
    bmcs = bmcs[:limit] if limit is not None else bmcs
    if bmcs:
        bmcs[0].inlet_celsius = 37.0
    if len(bmcs) > 1:
        bmcs[1].failed_psus = ["PSU2"]
    return bmcs


def _bmc(name: str, rng: random.Random, index: int) -> SimulatedBmc:
    return SimulatedBmc(
        name=name,
        system_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        flavor=FLAVORS[index % 5 % 3] if index % 5 < 3 else "legacy",
        inlet_celsius=round(rng.uniform(19.0, 26.0), 1),
        cpu_celsius=round(rng.uniform(45.0, 68.0), 1),
        power_watts=round(rng.uniform(180.0, 520.0), 0),
        fan_rpm=round(rng.uniform(5200.0, 7800.0), -1),
        seed=rng.getrandbits(32),
    )


def simulated_fleet(count: int, seed: int = 42) -> list[SimulatedBmc]:
    """`count` BMCs named bmc-0001... in the three flavors (benchmarks, tests)."""
    rng = random.Random(seed)
    return [_bmc(f"bmc-{i + 1:04d}", rng, i) for i in range(count)]


SETTABLE_FIELDS = tuple(f.name for f in fields(SimulatedBmc) if f.name in SimulatedBmc.SETTABLE)


def main(argv: list[str] | None = None) -> None:
    """Serve `--count` simulated BMCs until SIGTERM or Ctrl-C, after writing their BMC
    map to `--bmc-map` (benchmarks run the BMCs in a process of their own this way):
    ``python -m stackfleet.simulator.redfish --count 500 --bmc-map /tmp/bmc-map.yaml``."""
    import argparse  # noqa: PLC0415 - only the command line needs it
    import signal  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bmc-map", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with RedfishSimulator(simulated_fleet(args.count, args.seed)) as simulator:
        simulator.write_bmc_map(args.bmc_map)
        print(f"ready {simulator.control_url}", flush=True)  # noqa: T201 - the parent waits for it
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

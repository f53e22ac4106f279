"""The workload spec: one YAML file, several workloads, each a kind (vm, baremetal,
container), a count and what every member looks like.

Validated before anything runs, as policies are (same loader, same error quality): the
shape here, with file, line and field for each problem; the names a workload uses
(image, flavor, network, key pair, ...) then against the cloud, by
`provision.resolve`, with the closest valid choices."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackfleet.core.errors import StackFleetError
from stackfleet.core.times import Duration
from stackfleet.policy.errors import Loc, Problem, format_loc
from stackfleet.policy.marked_yaml import YamlSyntaxError, line_of, load
from stackfleet.policy.validation import problems_from

# a workload's name is also its members' name prefix and part of a Nova tag
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,47}$"
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


class SpecError(StackFleetError):
    """A workload spec is invalid, or names what the cloud does not have; nothing was
    created."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        head = (
            f"{count} problem{'s' if count != 1 else ''} in the workload spec; nothing was created"
        )
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Size(_Strict):
    """What one member needs; the smallest flavor that holds it is chosen (and shown)."""

    vcpus: int = Field(ge=1, description="Virtual CPUs.")
    ram: int = Field(ge=1, description="RAM in MiB.")
    disk: int = Field(default=0, ge=0, description="Root disk in GiB.")


class NetworkRef(_Strict):
    """A network by name or id, or an existing port (count 1 only)."""

    network: str | None = None
    port: str | None = None
    fixed_ip: str | None = None

    @model_validator(mode="after")
    def _one(self) -> NetworkRef:
        if (self.network is None) == (self.port is None):
            raise ValueError("give either 'network' or 'port'")
        return self


class Volume(_Strict):
    """A volume made with each member."""

    size: int = Field(ge=1, description="GiB.")
    type: str | None = Field(default=None, description="Cinder volume type.")
    delete_on_termination: bool = Field(
        default=True, description="Deleted with the member (else kept on purpose)."
    )


class Volumes(_Strict):
    """Boot from a volume made from the image, and extra blank volumes."""

    boot: Volume | None = None
    extra: list[Volume] = Field(default_factory=list)


class Placement(_Strict):
    """Where members go: an availability zone, and a server group made for the
    workload with one of Nova's policies."""

    availability_zone: str | None = None
    server_group: (
        Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"] | None
    ) = None


class Baremetal(_Strict):
    """Bare metal: the Ironic resource class and required traits."""

    resource_class: str | None = None
    traits: list[str] = Field(default_factory=list)


class Container(_Strict):
    """A container (Zun): image, command, environment, CPU, memory, exposed ports."""

    image: str
    command: list[str] | str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cpu: float | None = Field(default=None, gt=0)
    memory: int | None = Field(default=None, ge=4, description="MiB.")
    ports: list[int] = Field(default_factory=list)


class Workload(_Strict):
    """One workload: `count` members alike, found again by the labels StackFleet sets
    on them (so a server made by hand is never touched)."""

    name: str = Field(pattern=NAME_PATTERN, description="Members are NAME-1 .. NAME-COUNT.")
    kind: Literal["vm", "baremetal", "container"] = "vm"
    count: int = Field(ge=0, le=10_000)
    project: str | None = Field(
        default=None, description="Project name or id (default: the cloud's)."
    )
    cloud: str | None = Field(default=None, description="clouds.yaml name (default: --os-cloud).")
    region: str | None = None
    image: str | None = Field(default=None, description="Glance image name or id.")
    size: str | Size | None = Field(default=None, description="A flavor, or vcpus/ram/disk.")
    networks: list[str | NetworkRef] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    key_pair: str | None = None
    volumes: Volumes | None = None
    placement: Placement = Field(default_factory=Placement)
    metadata: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    owner: str | None = Field(default=None, description="Owner's address (metadata `owner`).")
    lease: Duration | None = Field(default=None, description="How long members may live.")
    baremetal: Baremetal | None = None
    container: Container | None = None
    scale_down: Literal["newest", "oldest"] = Field(
        default="newest", description="Which members go first when count shrinks."
    )
    timeout: Duration = Field(default=timedelta(minutes=10), description="Per member build.")
    require_approval: bool = Field(
        default=False, description="Creates and deletes wait for `stackfleet approve`."
    )
    # where it was written (not part of the YAML)
    source: str = Field(default="", exclude=True)
    line: int | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _kind_fields(self) -> Workload:
        if self.kind == "container":
            if self.container is None:
                raise ValueError("a container workload needs 'container' (image, command, ...)")
        else:
            if self.image is None and not (self.volumes and self.volumes.boot):
                raise ValueError(f"a {self.kind} workload needs 'image'")
            bare_rc = self.kind == "baremetal" and self.baremetal and self.baremetal.resource_class
            if self.size is None and not bare_rc:
                raise ValueError(
                    "a baremetal workload needs 'size' (a bare-metal flavor, when Nova fronts "
                    "Ironic) or 'baremetal.resource_class' (standalone Ironic)"
                    if self.kind == "baremetal"
                    else f"a {self.kind} workload needs 'size' (a flavor or vcpus/ram/disk)"
                )
            if self.container is not None:
                raise ValueError(f"'container' is for kind container, not {self.kind}")
        if self.baremetal is not None and self.kind != "baremetal":
            raise ValueError(f"'baremetal' is for kind baremetal, not {self.kind}")
        if any(isinstance(n, NetworkRef) and n.port for n in self.networks) and self.count > 1:
            raise ValueError("a port can be given only to a workload of count 1")
        return self


class SpecFile(_Strict):
    """A workload spec file: `workloads:`, a list."""

    workloads: list[Any]


def load_spec(path: str | Path) -> list[Workload]:
    """The workloads of one file; SpecError with every problem (file:line, field)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([Problem(name, None, "", f"cannot read: {exc.strerror or exc}")]) from exc
    return load_spec_text(text, name)


def load_spec_text(text: str, source: str = "<spec>") -> list[Workload]:
    """The workloads of one YAML text; SpecError when anything is wrong."""
    try:
        root = load(text)
    except YamlSyntaxError as exc:
        raise SpecError([Problem(source, exc.line, "", str(exc))]) from exc
    if not isinstance(root, dict):
        raise SpecError(
            [
                Problem(
                    source,
                    getattr(root, "line", None) or 1,
                    "",
                    "a spec is a mapping with 'workloads:'",
                )
            ]
        )
    try:
        document = SpecFile.model_validate(root)
    except ValidationError as exc:
        raise SpecError(_locate(source, root, problems_from(exc, SpecFile, what="key"))) from exc
    workloads: list[Workload] = []
    problems: list[Problem] = []
    seen: dict[str, Workload] = {}
    for index, raw in enumerate(document.workloads):
        loc: Loc = ("workloads", index)
        if not isinstance(raw, dict):
            problems.append(
                Problem(source, line_of(root, loc), format_loc(loc), "a workload is a mapping")
            )
            continue
        try:
            workload = Workload.model_validate(raw)
        except ValidationError as exc:
            problems += _locate(source, root, problems_from(exc, Workload, loc, what="key"), raw)
            continue
        workload.source, workload.line = source, line_of(root, loc)
        first = seen.get(workload.name)
        if first is not None:
            problems.append(
                Problem(
                    source,
                    workload.line,
                    f"workload {workload.name!r}",
                    f"name used twice (also line {first.line})",
                )
            )
        seen.setdefault(workload.name, workload)
        workloads.append(workload)
    if problems:
        raise SpecError(problems)
    return workloads


def _locate(
    source: str, root: Any, problems: list[tuple[Loc, str]], raw: Any = None
) -> list[Problem]:
    located = []
    for loc, message in problems:
        field = format_loc(loc)
        if len(loc) >= 2 and loc[0] == "workloads" and isinstance(raw, dict):
            name = raw.get("name")
            rest = format_loc(loc[2:])
            if isinstance(name, str):
                field = f"workload {name!r}" + (f" {rest}" if rest else "")
        located.append(Problem(source, line_of(root, loc), field, message))
    return located

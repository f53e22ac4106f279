"""Cloud Custodian's policy language, read as StackFleet's: what lets an operator's
c7n OpenStack policy files run unchanged.

A policy whose `resource` starts with `openstack.` is read in Custodian's dialect
(c7n 0.9 / c7n-openstack 0.1, as `c7n/filters/core.py` defines it): its resource names
map to StackFleet kinds, its keys (the openstacksdk dictionaries c7n filters) map to
StackFleet fields, `regex` matches at the start of the text ignoring case, and the
server filters `age`, `flavor`, `image` and `tags` become StackFleet filters. In every
policy, Custodian's operator names (`greater-than`, `gte`, `not-equal`, `ni`, `glob`,
`regex-case`, ...), the value sentinels `absent` / `present` / `empty` / `not-null`,
`value_type: age / expiration` and the age filter's `days` / `hours` / `minutes` /
`op` are understood.

What StackFleet cannot honour is a problem at its file and line, never dropped: an
unknown key, a key whose value has another shape here (c7n's `security_groups` is a
list of mappings, StackFleet's a list of names), filter types and options without an
equivalent, actions other than `webhook`.

Translation happens before validation, on the parsed (marked) YAML, and keeps each
filter's place in its list, so problem locations stay those of the file."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from stackfleet.policy.errors import Loc, OptionProblems

PREFIX = "openstack."

# c7n-openstack's resources -> StackFleet kinds
RESOURCES = {
    "server": "server",
    "volume": "volume",
    "flavor": "flavor",
    "image": "image",
    "project": "project",
    "security-group": "security_group",
    "user": "user",
}
UNSUPPORTED_RESOURCES = {
    "secret": "StackFleet does not collect Barbican secrets",
    "storage-container": "StackFleet does not collect Swift containers",
}

# Custodian's operator names -> StackFleet's (c7n OPERATORS)
OP_ALIASES = {
    "equal": "eq",
    "not-equal": "ne",
    "greater-than": "gt",
    "gte": "ge",
    "less-than": "lt",
    "lte": "le",
    "ni": "not-in",
}
# a `value` that is a test, not a value to compare with (c7n ValueFilter.match)
SENTINELS = ("absent", "present", "empty", "not-null")
# value types the value filter converts itself; age / expiration become an age filter
VALUE_TYPES = ("integer", "float", "normalize", "size", "unique_size", "swap", "cidr", "cidr_size")
UNSUPPORTED_VALUE_TYPES = {
    "expr": "compares with another key of the resource",
    "resource_count": "counts the whole result set",
    "version": "compares version strings",
    "date": "give the date as an ISO 8601 value with op gt/lt instead",
}
UNSUPPORTED_OPTIONS = {
    "value_from": "reads values from a file or URL",
    "value_path": "compares with another key of the resource",
    "value_regex": "extracts part of the value with a regular expression",
    "default": "substitutes a default value",
    "tag_key_transforms": "transforms tag keys",
}

# The keys of the openstacksdk dictionaries c7n-openstack filters (openstacksdk 0.52's
# cloud layer: list_servers, list_volumes, ...) that StackFleet holds under another name.
KEY_ALIASES: dict[str, dict[str, str]] = {
    "server": {
        "OS-EXT-STS:task_state": "task_state",
        "OS-EXT-STS:vm_state": "vm_state",
        "OS-EXT-SRV-ATTR:host": "host",
        "compute_host": "host",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": "hypervisor_hostname",
        "OS-EXT-AZ:availability_zone": "availability_zone",
        "az": "availability_zone",
        "location.zone": "availability_zone",
        "flavor.original_name": "flavor_name",
        "flavor.name": "flavor_name",
        "flavor.vcpus": "vcpus",
        "flavor.ram": "ram_mb",
        "flavor.disk": "disk_gb",
        "image.id": "image_id",
        "tenant_id": "project_id",
        "location.project.id": "project_id",
        "created_at": "created",
        "OS-SRV-USG:launched_at": "launched_at",
    },
    "volume": {
        "tenant_id": "project_id",
        "os-vol-tenant-attr:tenant_id": "project_id",
        "location.project.id": "project_id",
        "is_encrypted": "encrypted",
        "can_multiattach": "multiattach",
        "host": "backend_host",
        "os-vol-host-attr:host": "backend_host",
    },
    "flavor": {
        "OS-FLV-EXT-DATA:ephemeral": "ephemeral",
        "os-flavor-access:is_public": "is_public",
    },
    "image": {
        "owner": "project_id",
        "location.project.id": "project_id",
        "is_protected": "protected",
    },
    "project": {"is_enabled": "enabled"},
    "security_group": {"tenant_id": "project_id", "location.project.id": "project_id"},
    "user": {},
}
# Keys both have, holding a different shape: comparing them would silently disagree.
DIFFERENT_SHAPES: dict[str, dict[str, str]] = {
    "server": {
        "power_state": "c7n sees Nova's number (1); StackFleet the name (RUNNING)",
        "OS-EXT-STS:power_state": "c7n sees Nova's number (1); StackFleet the name (RUNNING)",
        "security_groups": "c7n sees a list of mappings ({name: ...}); StackFleet a list of "
        "names (use op contains with a name)",
        "addresses": "c7n sees Nova's mapping of networks; StackFleet a list of addresses",
        "volumes": "use StackFleet's volume_ids (a list of ids)",
        "os-extended-volumes:volumes_attached": "use StackFleet's volume_ids (a list of ids)",
    },
    "volume": {
        "bootable": "c7n sees true/false; StackFleet Cinder's text 'true'/'false'",
        "is_bootable": "c7n sees true/false; StackFleet Cinder's text 'true'/'false'",
        "attachments": "use StackFleet's attached_server_ids (a list of server ids)",
        "metadata": "StackFleet does not keep volume metadata",
    },
    "flavor": {"swap": "c7n sees a number; StackFleet the API's value ('' or a number)"},
}

# c7n-openstack's own filters that have no StackFleet equivalent
UNSUPPORTED_FILTERS = {
    ("server", "security-group"): "list-item filter over the server's security groups",
    ("user", "role"): "role filter",
    ("user", "extended-info"): "extended-info filter",
}

_DIALECT: ContextVar[bool] = ContextVar("custodian_dialect", default=False)


def in_dialect() -> bool:
    """Whether the policy being parsed is a Custodian policy (`openstack.` resource)."""
    return _DIALECT.get()


@contextmanager
def dialect(custodian: bool) -> Iterator[None]:
    """Parse the filters and actions inside in Custodian's dialect (or not)."""
    token = _DIALECT.set(custodian)
    try:
        yield
    finally:
        _DIALECT.reset(token)


def resource_kind(resource: str) -> tuple[str | None, str | None]:
    """(StackFleet kind, None) for a Custodian resource name, or (None, why not)."""
    name = resource.removeprefix(PREFIX)
    if name in RESOURCES:
        return RESOURCES[name], None
    if name in UNSUPPORTED_RESOURCES:
        return None, f"Custodian resource {resource!r} has no StackFleet kind: " + (
            UNSUPPORTED_RESOURCES[name]
        )
    return None, (
        f"unknown Custodian resource {resource!r}; c7n-openstack resources StackFleet runs: "
        + ", ".join(PREFIX + n for n in RESOURCES)
    )


POLICY_NOTES = ("comment", "comments", "tags", "metadata")


def translate_policy(raw: dict[Any, Any], loc: Loc) -> tuple[dict[Any, Any], list[tuple[Loc, str]]]:
    """A Custodian policy mapping as StackFleet's (filters and actions still raw), and
    the problems with its policy-level keys."""
    problems: list[tuple[Loc, str]] = []
    data = dict(raw)
    kind, why = resource_kind(str(raw.get("resource")))
    if kind is None:
        problems.append((loc + ("resource",), why or ""))
    else:
        data["resource"] = kind
    # notes for people, with no effect in c7n either
    notes = [data.pop(key) for key in POLICY_NOTES if key in data]
    if "description" not in data:
        text = [n for n in notes if isinstance(n, str)]
        if text:
            data["description"] = " ".join(text)
    mode = data.get("mode")
    if isinstance(mode, dict) and mode.get("type", "pull") == "pull":
        # c7n's pull mode is `custodian run`: StackFleet runs it after each pass
        rest = {k: v for k, v in mode.items() if k != "type"}
        if rest:
            problems.append(
                (loc + ("mode",), f"pull mode options {', '.join(map(str, rest))} do not apply")
            )
        data.pop("mode")
    elif mode is not None:
        problems.append(
            (
                loc + ("mode",),
                "c7n-openstack runs only in pull mode; for StackFleet's periodic, event "
                "or manual modes write `mode: {type: periodic}` etc. in a StackFleet policy",
            )
        )
        data.pop("mode")
    return data, problems


def translate_action(raw: Any, loc: Loc) -> Any:
    """A Custodian action as StackFleet's: `webhook` (c7n-openstack's only action)
    becomes `notify` with its URL; options StackFleet cannot honour are problems."""
    data = {"type": raw} if isinstance(raw, str) else raw
    if not isinstance(data, dict) or data.get("type") != "webhook":
        return raw
    problems: list[tuple[Loc, str]] = []
    for option in data:
        if option in ("type", "url", "method", "batch"):
            continue
        problems.append(
            (
                loc + (option,),
                f"webhook option {option!r} is not supported: StackFleet posts its own "
                "JSON message (policy, resource and finding) to the url",
            )
        )
    method = str(data.get("method", "POST")).upper()
    if method != "POST":
        problems.append((loc + ("method",), f"StackFleet's webhook always POSTs (got {method})"))
    if not isinstance(data.get("url"), str):
        problems.append((loc + ("url",), "webhook needs a url"))
    if problems:
        raise OptionProblems(problems)
    return {"type": "notify", "to": [], "webhook": data["url"]}


def translate_filter(raw: Any, kind: str, loc: Loc) -> Any:
    """One filter mapping, in either dialect, as StackFleet's filter language; raises
    OptionProblems (absolute locations) for what cannot be honoured."""
    if not isinstance(raw, dict):
        return raw
    custodian = in_dialect()
    if "type" not in raw and len(raw) == 1:
        key, value = next(iter(raw.items()))
        if isinstance(key, str) and key.lower() in ("and", "or", "not"):
            return {key.lower(): value} if key != key.lower() else raw
        # the short form: c7n and StackFleet both compare with ==, or test a sentinel
        data: dict[Any, Any] = {"type": "value", "key": key, "value": value}
        return _value(data, kind, loc, short=True)
    kind_filter = str(raw.get("type"))
    if kind_filter == "value":
        return _value(dict(raw), kind, loc, short=False)
    if kind_filter == "age" and any(k in raw for k in ("days", "hours", "minutes", "op")):
        return _age(raw, kind, loc)
    if custodian and (kind, kind_filter) in UNSUPPORTED_FILTERS:
        raise OptionProblems(
            [
                (
                    loc + ("type",),
                    f"c7n's {kind_filter!r} filter "
                    f"({UNSUPPORTED_FILTERS[(kind, kind_filter)]}) is not supported",
                )
            ]
        )
    if custodian and kind == "server" and kind_filter == "tags":
        return _server_tags(raw, loc)
    if custodian and kind == "server" and kind_filter == "flavor":
        return _server_flavor(raw, loc)
    if custodian and kind == "server" and kind_filter == "image":
        return _server_image(raw, loc)
    return raw


def _value(data: dict[Any, Any], kind: str, loc: Loc, short: bool) -> Any:
    custodian = in_dialect()
    problems: list[tuple[Loc, str]] = []
    for option, why in UNSUPPORTED_OPTIONS.items():
        # StackFleet's own `value_from` names a field of the same record (a text);
        # c7n's is a mapping (url, format, expr) and is meant only there
        if option == "value_from" and not custodian and isinstance(data.get(option), str):
            continue
        if option in data:
            problems.append((loc + (option,), f"c7n option {option!r} ({why}) is not supported"))
    key = data.get("key")
    if custodian and isinstance(key, str):
        shape = DIFFERENT_SHAPES.get(kind, {}).get(key)
        if shape is not None:
            problems.append(
                (loc + (() if short else ("key",)), f"key {key!r} cannot be compared: {shape}")
            )
        data["key"] = KEY_ALIASES.get(kind, {}).get(key, key)
    op = data.get("op")
    if isinstance(op, str):
        op = OP_ALIASES.get(op, op)
        data["op"] = op
    value = data.get("value")
    value_type = data.get("value_type")
    if isinstance(value_type, str) and value_type in UNSUPPORTED_VALUE_TYPES:
        problems.append(
            (
                loc + ("value_type",),
                f"value_type {value_type!r} ({UNSUPPORTED_VALUE_TYPES[value_type]}) "
                "is not supported",
            )
        )
    if problems:
        raise OptionProblems(problems)
    sentinels = SENTINELS if custodian or not short else (*SENTINELS, "not-empty")
    if isinstance(value, str) and value in sentinels and value_type is None:
        # c7n: the sentinel is the test, whatever the op
        data.pop("value")
        data.pop("op", None)
        if value == "empty" and custodian:
            # c7n's empty is "not truthy": also 0 and false
            return {"not": [{"type": "value", "key": data["key"], "op": "not-null"}]}
        data["op"] = value
        return data
    if value_type in ("age", "expiration"):
        return _value_age(data, kind, loc)
    if op in ("glob", "regex", "regex-case") and isinstance(value, str):
        if op == "glob":
            data["value"] = r"\A" + fnmatch.translate(value)
        elif op == "regex-case" or custodian:
            # c7n matches at the start (re.match); its `regex` ignores case
            data["value"] = r"\A(?:" + value + ")"
            if op == "regex":
                data["ignore_case"] = True
        data["op"] = "regex"
    return data


def _days(data: dict[Any, Any], loc: Loc, keys: tuple[str, ...]) -> timedelta:
    total = timedelta(0)
    units = {"value": "days", "days": "days", "hours": "hours", "minutes": "minutes"}
    for key in keys:
        amount = data.get(key)
        if amount is None:
            continue
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise OptionProblems([(loc + (key,), f"{key} is a number (got {amount!r})")])
        total += timedelta(**{units[key]: amount})
    return total


def _value_age(data: dict[Any, Any], kind: str, loc: Loc) -> dict[str, Any]:
    """`value_type: age`: op(now - value days, the key's time); `expiration`: op(the
    key's time, now + value days) — as c7n compares them."""
    op = data.get("op") or "eq"
    span = _days(data, loc, ("value",))
    field = data.get("key")
    if data["value_type"] == "age":
        # now - span > time  <=>  older than span
        bounds = {"gt": "older_than", "ge": "older_than", "lt": "newer_than", "le": "newer_than"}
        sign = 1
    else:
        # time < now + span  <=>  older than -span
        bounds = {"lt": "older_than", "le": "older_than", "gt": "newer_than", "ge": "newer_than"}
        sign = -1
    if op not in bounds:
        raise OptionProblems(
            [(loc + ("op",), f"value_type {data['value_type']} works with gt, ge, lt, le")]
        )
    return {"type": "age", "field": field, bounds[op]: sign * span}


# c7n's age filter reads this field of each kind (c7n-openstack: server only)
AGE_FIELDS = {"server": "launched_at"}


def _age(raw: dict[Any, Any], kind: str, loc: Loc) -> dict[str, Any]:
    """c7n's age filter: op(now - days/hours/minutes, the resource's date); op
    defaults to greater-than (older than)."""
    extra = [k for k in raw if k not in ("type", "days", "hours", "minutes", "op", "field")]
    if extra:
        raise OptionProblems(
            [(loc + (extra[0],), "with days/hours/minutes, age takes op and field only")]
        )
    field = raw.get("field") or AGE_FIELDS.get(kind)
    if field is None:
        raise OptionProblems(
            [(loc, f"give 'field' (a timestamp of {kind}): c7n has no age filter for it")]
        )
    op = OP_ALIASES.get(str(raw.get("op", "gt")), str(raw.get("op", "gt")))
    span = _days(raw, loc, ("days", "hours", "minutes"))
    bounds = {"gt": "older_than", "ge": "older_than", "lt": "newer_than", "le": "newer_than"}
    if op not in bounds:
        raise OptionProblems([(loc + ("op",), "the age filter works with gt, ge, lt, le")])
    return {"type": "age", "field": field, bounds[op]: span}


def _server_tags(raw: dict[Any, Any], loc: Loc) -> dict[str, Any]:
    """c7n-openstack's server `tags` filter: `key=value` strings among the server's tags,
    any or all of them."""
    tags = raw.get("tags") or []
    op = raw.get("op", "all")
    if op not in ("any", "all") or not isinstance(tags, list):
        raise OptionProblems([(loc, "tags: a list of {key, value}; op: any or all")])
    tests = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, dict) or not {"key", "value"} <= set(tag):
            raise OptionProblems([(loc + ("tags", index), "a tag is {key: ..., value: ...}")])
        tests.append(
            {
                "type": "value",
                "key": "tags",
                "op": "contains",
                "value": f"{tag['key']}={tag['value']}",
            }
        )
    if not tests:
        return {"type": "value", "key": "id", "op": "present"}  # c7n: all of none holds
    return {"and" if op == "all" else "or": tests}


_FLAVOR_OPTIONS = {
    "flavor_name": "name",
    "flavor_id": "id",
    "vcpus": "vcpus",
    "ram": "ram",
    "disk": "disk",
    "ephemeral": "ephemeral",
    "is_public": "is_public",
}


def _server_flavor(raw: dict[Any, Any], loc: Loc) -> dict[str, Any]:
    """c7n-openstack's server `flavor` filter: the flavor named by the server's
    flavor (original_name) exists and has every given attribute."""
    tests: list[dict[str, Any]] = []
    for option, value in raw.items():
        if option == "type":
            continue
        if option not in _FLAVOR_OPTIONS:
            raise OptionProblems(
                [(loc + (option,), f"flavor options: {', '.join(_FLAVOR_OPTIONS)}")]
            )
        # c7n skips an option whose value is falsy (0, "") except is_public
        if option != "is_public" and not value:
            continue
        if option == "is_public" and value is None:
            continue
        tests.append({_FLAVOR_OPTIONS[option]: value})
    return {"type": "relation", "relation": "flavor", "filters": tests}


def _server_image(raw: dict[Any, Any], loc: Loc) -> dict[str, Any]:
    """c7n-openstack's server `image` filter: the server's image exists and has the
    name / visibility / status given; `status: absent` matches a missing image."""
    options = {"image_name": "name", "visibility": "visibility", "status": "status"}
    tests: list[dict[str, Any]] = []
    for option, value in raw.items():
        if option == "type":
            continue
        if option not in options:
            raise OptionProblems([(loc + (option,), f"image options: {', '.join(options)}")])
        if value is None:
            continue
        if option == "status" and value == "absent":
            return {"type": "relation", "relation": "image", "absent": True}
        tests.append({"type": "value", "key": options[option], "value": value})
    return {"type": "relation", "relation": "image", "filters": tests}

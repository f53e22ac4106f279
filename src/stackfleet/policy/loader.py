"""Loading policy files: parse YAML (keeping lines), validate every policy against the
schema and the filter/action registries, and report every problem at once with its
file, line and field. Any problem anywhere means no policy is returned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackfleet.actions import ACTIONS
from stackfleet.actions.base import Action
from stackfleet.model import KINDS
from stackfleet.policy.custodian import PREFIX as CUSTODIAN_PREFIX
from stackfleet.policy.custodian import RESOURCES as CUSTODIAN_NAMES
from stackfleet.policy.custodian import dialect, in_dialect, translate_action, translate_policy
from stackfleet.policy.errors import Loc, OptionProblems, PolicyError, Problem, format_loc
from stackfleet.policy.event_patterns import event_problems
from stackfleet.policy.filters import parse_filters
from stackfleet.policy.filters.base import Filter
from stackfleet.policy.marked_yaml import YamlSyntaxError, line_of, load
from stackfleet.policy.schema import Policy, PolicyFile, PolicySpec
from stackfleet.policy.validation import problems_from

PACKS = Path(__file__).parent / "packs"


def pack_names() -> list[str]:
    """Built-in policy packs (policy/packs/*.yaml)."""
    return sorted(p.stem for p in PACKS.glob("*.yaml"))


def pack_path(name: str) -> Path:
    """The file of a built-in pack; ConfigError-like PolicyError when unknown."""
    # only a pack's bare name: `../x` or an absolute path must not load any YAML file
    path = PACKS / f"{name}.yaml"
    if name not in pack_names() or not path.is_file():
        raise PolicyError(
            [
                Problem(
                    name, None, "", f"no built-in pack {name!r}; packs: {', '.join(pack_names())}"
                )
            ]
        )
    return path


def resolve_source(name: str) -> Path:
    """A policy file path, or `pack:NAME` for a built-in pack."""
    if name.startswith("pack:"):
        return pack_path(name.removeprefix("pack:"))
    return Path(name)


def load_files(names: Iterable[str | Path]) -> list[Policy]:
    """Every policy of every file; raises PolicyError listing all problems (of all
    files) when anything is wrong, including names used twice across files."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    for name in names:
        path = resolve_source(str(name))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(Problem(str(name), None, "", f"cannot read: {exc.strerror or exc}"))
            continue
        found, wrong = parse_text(text, str(name))
        policies += found
        problems += wrong
    seen: dict[str, Policy] = {}
    for policy in policies:
        first = seen.get(policy.name)
        if first is not None:
            problems.append(
                Problem(
                    policy.source,
                    policy.line,
                    "name",
                    f"policy name {policy.name!r} is used twice (also {first.source}:{first.line})",
                )
            )
        seen.setdefault(policy.name, policy)
    if problems:
        raise PolicyError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    return policies


def load_text(text: str, source: str = "<policy>") -> list[Policy]:
    """The policies of one YAML text; raises PolicyError when anything is wrong."""
    policies, problems = parse_text(text, source)
    if problems:
        raise PolicyError(problems)
    return policies


def parse_text(text: str, source: str) -> tuple[list[Policy], list[Problem]]:
    """(valid policies, problems) of one YAML text. Callers refuse to run anything when
    there is any problem; the valid policies still take part in cross-file checks."""
    try:
        root = load(text)
    except YamlSyntaxError as exc:
        return [], [Problem(source, exc.line, "", str(exc))]
    if not isinstance(root, dict):
        return [], [
            Problem(
                source,
                getattr(root, "line", None) or 1,
                "",
                "a policy file is a mapping with a 'policies:' list",
            )
        ]
    try:
        document = PolicyFile.model_validate(root)
    except ValidationError as exc:
        return [], _locate(source, root, problems_from(exc, PolicyFile, what="key"))
    policies: list[Policy] = []
    problems: list[Problem] = []
    for index, raw in enumerate(document.policies):
        loc: Loc = ("policies", index)
        try:
            policies.append(_policy(raw, loc, source, line_of(root, loc)))
        except OptionProblems as exc:
            problems += _locate(source, root, exc.problems, raw)
    return policies, problems


def _policy(raw: Any, loc: Loc, source: str, line: int | None) -> Policy:
    if not isinstance(raw, dict):
        raise OptionProblems([(loc, "a policy is a mapping with name, resource, filters, actions")])
    resource = raw.get("resource")
    custodian = isinstance(resource, str) and resource.startswith(CUSTODIAN_PREFIX)
    with dialect(custodian):
        return _read_policy(raw, loc, source, line, custodian)


def _read_policy(raw: Any, loc: Loc, source: str, line: int | None, custodian: bool) -> Policy:
    problems: list[tuple[Loc, str]] = []
    if custodian:
        # a Cloud Custodian policy (openstack.server ...): its resource name and
        # policy-level keys as StackFleet's; its filters are read as it means them
        raw, problems = translate_policy(raw, loc)
        if problems and raw.get("resource") not in KINDS:
            raise OptionProblems(problems)
    elif raw.get("resource") in CUSTODIAN_NAMES and raw.get("resource") not in KINDS:
        raw = {**raw, "resource": CUSTODIAN_NAMES[raw["resource"]]}  # security-group
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(raw)
    except ValidationError as exc:
        problems += problems_from(exc, PolicySpec, loc, what="key")
    resource = raw.get("resource")
    if isinstance(resource, str) and resource not in KINDS:
        problems.append(
            (loc + ("resource",), f"unknown resource kind {resource!r}; kinds: {', '.join(KINDS)}")
        )
    if problems or spec is None:
        # Still check the filters and actions of a known kind, so one run of validate
        # names every problem, not only those of the keys around them.
        if isinstance(resource, str) and resource in KINDS:
            for key, parse in (("filters", parse_filters), ("actions", parse_actions)):
                items = raw.get(key)
                if isinstance(items, list):
                    try:
                        parse(items, resource, loc + (key,))
                    except OptionProblems as exc:
                        problems += exc.problems
        raise OptionProblems(problems)
    filters = []
    try:
        filters = parse_filters(spec.filters, spec.resource, loc + ("filters",))
    except OptionProblems as exc:
        problems += exc.problems
    escalations: list[tuple[str, list[Filter]]] = []
    for index, tier in enumerate(spec.escalate):
        try:
            here = loc + ("escalate", index, "filters")
            escalations.append((tier.severity, parse_filters(tier.filters, spec.resource, here)))
        except OptionProblems as exc:
            problems += exc.problems
    actions = []
    try:
        actions = parse_actions(spec.actions, spec.resource, loc + ("actions",))
    except OptionProblems as exc:
        problems += exc.problems
    if spec.mode.type == "event" and not spec.mode.events:
        problems.append((loc + ("mode", "events"), "an event policy needs at least one event type"))
    problems += event_problems(spec.mode.events, spec.resource, loc + ("mode", "events"))
    if problems:
        raise OptionProblems(problems)
    return Policy(
        spec=spec,
        filters=filters,
        actions=actions,
        source=source,
        line=line,
        escalations=escalations,
    )


def parse_actions(raw: Sequence[Any], kind: str, loc: Loc) -> list[Action]:
    """The actions of a policy on `kind`; raises OptionProblems with every problem."""
    actions: list[Action] = []
    problems: list[tuple[Loc, str]] = []
    for index, item in enumerate(raw):
        here = loc + (index,)
        if in_dialect():
            try:
                item = translate_action(item, here)
            except OptionProblems as exc:
                problems += exc.problems
                continue
        data = {"type": item} if isinstance(item, str) else item
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            problems.append(
                (here, "an action is a name (stop) or a mapping with a 'type' (type: stop)")
            )
            continue
        name = data["type"]
        if name not in ACTIONS:
            problems.append(
                (
                    here + ("type",),
                    f"unknown action {name!r}; actions for {kind}: "
                    f"{', '.join(ACTIONS.names_for(kind)) or 'none'}",
                )
            )
            continue
        cls = ACTIONS.get(name, kind)
        if cls is None:
            problems.append(
                (
                    here + ("type",),
                    f"action {name!r} is not valid for {kind}; it applies to "
                    f"{', '.join(ACTIONS.kinds_of(name))}; actions for {kind}: "
                    f"{', '.join(ACTIONS.names_for(kind))}",
                )
            )
            continue
        try:
            action = cls.model_validate(data)
        except ValidationError as exc:
            problems += problems_from(exc, cls, here)
            continue
        found = action.check(kind)
        if found:
            problems += [(here + p, m) for p, m in found]
            continue
        for option in cls.nested_filters:
            try:
                action.nested[option] = parse_filters(
                    getattr(action, option), kind, here + (option,)
                )
            except OptionProblems as exc:
                problems += exc.problems
        actions.append(action)
    if problems:
        raise OptionProblems(problems)
    return actions


def _locate(
    source: str, root: Any, problems: list[tuple[Loc, str]], policy: Any = None
) -> list[Problem]:
    """Problems with their lines, and fields named from the policy (by its name)."""
    located = []
    for loc, message in problems:
        field = format_loc(loc)
        if len(loc) >= 2 and loc[0] == "policies" and isinstance(policy, dict):
            name = policy.get("name")
            rest = format_loc(loc[2:])
            if isinstance(name, str):
                field = f"policy {name!r}" + (f" {rest}" if rest else "")
        located.append(Problem(source, line_of(root, loc), field, message))
    return located

"""Threshold rules over probe readings, and the findings they raise.

A rule is data: which metric of which kind of resource, the comparison, how long the
condition must hold (``for``, as in a Prometheus alerting rule), a severity, and two
sentences for the operator: what crossed which line, and what usually helps. The default
RabbitMQ pack (``stackfleet.sources.rabbitmq``) follows the alert packs operators
already run; a configuration file can change a rule's value, duration and severity, or
switch it off, by the rule's name. (Database thresholds are a policy pack now:
policy/packs/database.yaml; these rules are on their way there too.)

A condition that holds for less than its ``for`` is a *pending* finding; once it has held
for ``for`` seconds (judged from the stored samples of the metric) it is *firing*.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

SEVERITIES = ("info", "warning", "critical")

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

# Fields of a rule a configuration file may change.
OVERRIDABLE = ("value", "for", "severity", "enabled")

# (metric, since) -> [(ts, value), ...] oldest first: the stored history of one resource.
History = Callable[[str, float], Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class Rule:
    """One threshold. `summary` and `advice` are format strings: they may use {value},
    {threshold}, {resource}, {for} and any label of the resource (e.g. {service})."""

    name: str
    kind: str
    metric: str
    op: str
    value: float
    severity: str
    summary: str
    advice: str
    for_seconds: float = 0.0
    unit: str = ""
    # the rule applies only to resources whose labels have these values ("a|b": either)
    match: tuple[tuple[str, str], ...] = ()
    # ... and only while these metrics of the same reading satisfy (metric, op, value)
    when: tuple[tuple[str, str, float], ...] = ()
    enabled: bool = True
    # the alert of an operators' pack this rule follows, for the documentation
    origin: str = ""

    def applies(self, labels: Mapping[str, str], values: Mapping[str, float]) -> bool:
        """Whether the rule looks at this resource at all."""
        if not self.enabled or self.metric not in values:
            return False
        if any(labels.get(key) not in want.split("|") for key, want in self.match):
            return False
        return all(
            metric in values and COMPARISONS[op](values[metric], value)
            for metric, op, value in self.when
        )

    def holds(self, value: float) -> bool:
        """Whether `value` crosses the threshold."""
        return COMPARISONS[self.op](value, self.value)


@dataclass(frozen=True)
class Finding:
    """A rule whose condition holds for a resource now."""

    rule: str
    severity: str
    kind: str
    resource_id: str
    metric: str
    value: float
    threshold: str
    state: str  # "firing" or "pending"
    since: float
    message: str
    advice: str
    labels: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The finding as plain data (CLI json/yaml, API)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "kind": self.kind,
            "resource_id": self.resource_id,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "since": self.since,
            "message": self.message,
            "advice": self.advice,
            **({"labels": self.labels} if self.labels else {}),
        }


def format_value(value: float, unit: str) -> str:
    """A reading in the operator's units: ratios as percent, rates per second."""
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "per_second":
        return f"{value:.3g}/s"
    if unit == "seconds":
        return f"{value:.3g} s"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit == "bool":
        return "yes" if value else "no"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def format_duration(seconds: float) -> str:
    """60 -> "1 min", 300 -> "5 min", 45 -> "45 s"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def _pending_since(rule: Rule, now: float, history: History | None) -> float:
    """Since when the condition has held without a break, judged from stored samples
    (the current reading, at `now`, holds)."""
    if rule.for_seconds <= 0 or history is None:
        return now
    # look back twice the duration: enough to see the condition start, bounded in cost
    since = now - 2 * rule.for_seconds
    start = now
    for ts, value in reversed(list(history(rule.metric, since))):
        if ts > now:
            continue
        if not rule.holds(value):
            break
        start = ts
    return start


def evaluate(
    rules: Iterable[Rule],
    kind: str,
    resource_id: str,
    values: Mapping[str, float],
    labels: Mapping[str, str] | None = None,
    now: float = 0.0,
    history: History | None = None,
) -> list[Finding]:
    """The findings of `rules` on one resource's current `values`. `history` gives the
    stored samples of a metric, so a rule with a duration knows how long its condition
    has held; without it every held condition is pending until it has no duration."""
    labels = dict(labels or {})
    findings = []
    for rule in rules:
        if rule.kind != kind or not rule.applies(labels, values):
            continue
        value = values[rule.metric]
        if not rule.holds(value):
            continue
        since = _pending_since(rule, now, history)
        firing = rule.for_seconds <= 0 or now - since >= rule.for_seconds
        threshold = f"{rule.op} {format_value(rule.value, rule.unit)}"
        if rule.for_seconds > 0:
            threshold += f" for {format_duration(rule.for_seconds)}"
        words = {
            **labels,
            "value": format_value(value, rule.unit),
            "threshold": threshold,
            "resource": resource_id,
            "for": format_duration(rule.for_seconds),
        }
        message = rule.summary.format(**words)
        if not firing:
            message += (
                f" (pending: held for {format_duration(round(now - since))} of "
                f"{format_duration(rule.for_seconds)})"
            )
        findings.append(
            Finding(
                rule=rule.name,
                severity=rule.severity,
                kind=kind,
                resource_id=resource_id,
                metric=rule.metric,
                value=value,
                threshold=threshold,
                state="firing" if firing else "pending",
                since=since,
                message=message,
                advice=rule.advice.format(**words),
                labels={k: v for k, v in labels.items() if v},
            )
        )
    return findings


class RuleOverrideError(ValueError):
    """An override names an unknown rule or field, or gives a bad value. `path` is the
    (rule, field) it was about, so the configuration loader can point at the line."""

    def __init__(self, message: str, path: tuple[str, ...]) -> None:
        super().__init__(message)
        self.path = path


def apply_overrides(
    rules: Sequence[Rule], overrides: Mapping[str, Mapping[str, Any]]
) -> tuple[Rule, ...]:
    """`rules` with the operator's changes applied: {rule name: {value, for, severity,
    enabled}}. Unknown rules or fields, and values of the wrong type, are errors."""
    by_name = {rule.name: rule for rule in rules}
    changed = dict(by_name)
    for name, fields in overrides.items():
        if name not in by_name:
            known = ", ".join(sorted(by_name))
            raise RuleOverrideError(f"unknown rule {name!r} (known: {known})", (name,))
        if not isinstance(fields, Mapping):
            raise RuleOverrideError(
                f"rule {name!r}: expected a mapping of {', '.join(OVERRIDABLE)}", (name,)
            )
        updates: dict[str, Any] = {}
        for key, raw in fields.items():
            if key not in OVERRIDABLE:
                raise RuleOverrideError(
                    f"rule {name!r}: unknown field {key!r} (allowed: {', '.join(OVERRIDABLE)})",
                    (name, str(key)),
                )
            if key in ("value", "for"):
                if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                    raise RuleOverrideError(
                        f"rule {name!r}: {key} must be a number >= 0, got {raw!r}", (name, key)
                    )
                updates["value" if key == "value" else "for_seconds"] = float(raw)
            elif key == "severity":
                if raw not in SEVERITIES:
                    raise RuleOverrideError(
                        f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}, "
                        f"got {raw!r}",
                        (name, key),
                    )
                updates["severity"] = raw
            else:
                if not isinstance(raw, bool):
                    raise RuleOverrideError(
                        f"rule {name!r}: enabled must be true or false, got {raw!r}", (name, key)
                    )
                updates["enabled"] = raw
        changed[name] = replace(by_name[name], **updates)
    return tuple(changed[rule.name] for rule in rules)


def rules_table(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """The rules as rows, for `stackfleet db rules` and the documentation."""
    return [
        {
            "name": rule.name,
            "kind": rule.kind,
            "condition": f"{rule.metric} {rule.op} {format_value(rule.value, rule.unit)}",
            "for": format_duration(rule.for_seconds) if rule.for_seconds else "",
            "severity": rule.severity,
            "enabled": rule.enabled,
            "origin": rule.origin,
        }
        for rule in rules
    ]

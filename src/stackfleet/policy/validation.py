"""Turning pydantic's validation errors into sentences that say what is allowed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from stackfleet.policy.errors import Loc


def option_names(model: type[BaseModel]) -> list[str]:
    """The option names a model accepts (by alias when it has one)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def problems_from(
    exc: ValidationError, model: type[BaseModel], prefix: Loc = (), what: str = "option"
) -> list[tuple[Loc, str]]:
    """(location, sentence) per error of `exc`, raised validating `model`."""
    problems: list[tuple[Loc, str]] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        problems.append((prefix + loc, sentence(error, model, loc, what)))
    return problems


def _model_at(model: type[BaseModel], path: Loc) -> type[BaseModel] | None:
    """The model validating the mapping at `path` inside `model` (None if not a model)."""
    current: type[BaseModel] = model
    for part in path:
        info = current.model_fields.get(str(part)) if isinstance(part, str) else None
        if info is None:
            return None
        annotation = info.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        found = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if found is None:
            return None
        current = found
    return current


def sentence(error: Any, model: type[BaseModel], loc: Loc, what: str = "option") -> str:
    kind = error.get("type", "")
    got = error.get("input")
    ctx = error.get("ctx") or {}
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = ", ".join(n for n in option_names(owner) if n != "type") if owner else ""
        text = f"unknown {what} {name!r}"
        return f"{text}; allowed: {allowed}" if allowed else text
    if kind == "string_pattern_mismatch" and name == "name":
        return (
            f"{got!r} is not a valid name: use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if kind == "missing":
        return f"required {what} {name!r} is missing"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"{got!r} is not allowed; allowed: {expected.replace(' or ', ', ')}"
    message = str(error.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    elif got is not None and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return message[:1].lower() + message[1:]

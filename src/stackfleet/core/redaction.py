"""Keeping secrets out of what StackFleet shows: URLs with passwords or tokens in
messages, logs, API answers and stored rows.

One function for every URL StackFleet prints (database DSNs, store URLs, RabbitMQ
management and transport URLs, webhooks): `redact_url` keeps what an operator needs to
recognise the endpoint and masks the rest. `public_url` is stricter, for URLs that are
secrets as a whole (webhooks: the token is often the path itself)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# query parameters whose values are credentials
SECRET_PARAMS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "access_token",
        "auth_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "auth",
        "credential",
        "credentials",
    }
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# a path segment that looks like a token (Slack/Teams/Discord webhooks carry it there)
_TOKENISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-.~]{16,}$|^[0-9a-fA-F]{24,}$")


def _redact_userinfo(netloc: str) -> str:
    """`user:password@host` → `user:***@host`, for each host of a multi-host URL
    (oslo.messaging's `rabbit://u:p@h1,u:p@h2/`). The password may contain `@`: the
    user information ends at the last `@` of its host part."""
    segments = netloc.split(",")
    if len(segments) > 1 and not all("@" in s for s in segments):
        segments = [netloc]  # a comma inside a password, not several hosts
    out = []
    for segment in segments:
        userinfo, at, host = segment.rpartition("@")
        if not at:
            out.append(segment)
            continue
        user, colon, _password = userinfo.partition(":")
        out.append(f"{user}:{MASK}@{host}" if colon else f"{user}@{host}")
    return ",".join(out)


def _redact_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMS for name, _ in pairs):
        return query
    return urlencode(
        [(name, MASK if name.lower() in SECRET_PARAMS else value) for name, value in pairs],
        safe="*",
    )


def redact_url(url: str) -> str:
    """`url` without the secrets in it: the password of its user information (also one
    containing `@`; a user without a password is kept) and the values of query
    parameters such as `password=` or `token=`. Text that is not a URL is returned as
    it is."""
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    # the host part ends at the first `/?#` after the user information, which ends at
    # the last `@` before the path: a password may hold `@`, `?` or `#` (not `/`, which
    # URLs must encode), where urlsplit would cut it short
    slash = rest.find("/")
    at = rest.rfind("@", 0, slash if slash != -1 else len(rest))
    if at != -1 and _query_before_password(rest[:at]):
        at = -1  # the `@` is in a query or fragment of a URL without a path
    cut = len(rest)
    for stop in "/?#":
        found = rest.find(stop, at + 1)
        if found != -1:
            cut = min(cut, found)
    netloc, tail = rest[:cut], rest[cut:]
    try:
        parts = urlsplit(f"{scheme}://x{tail}")
    except ValueError:
        return f"{scheme}://{_redact_userinfo(netloc)}{MASK if tail else ''}"
    query = _redact_query(parts.query)
    return (
        f"{scheme}://{_redact_userinfo(netloc)}{parts.path}"
        + (f"?{query}" if query or tail.find("?") != -1 else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _query_before_password(userinfo: str) -> bool:
    """`userinfo` (what precedes an `@`) starts a query or fragment before any password."""
    colon = userinfo.find(":")
    marks = [i for i in (userinfo.find("?"), userinfo.find("#")) if i != -1]
    return bool(marks) and (colon == -1 or min(marks) < colon)


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (error messages quoting a URL)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def public_url(url: str) -> str:
    """How to show a URL that is a credential as a whole (a webhook): scheme, host and
    port, and the path with token-like segments masked; never user information, query
    or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    path = "/".join(MASK if _TOKENISH.match(s) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, f"{host}{port}", path, "", ""))


def redact_options(options: Any, key: str = "") -> Any:
    """Options (an action's, a receiver's) fit to show and store: webhooks and other
    `url` options as their `public_url`, any other URL redacted, nested values too."""
    if isinstance(options, dict):
        return {k: redact_options(v, str(k)) for k, v in options.items()}
    if isinstance(options, list):
        return [redact_options(v, key) for v in options]
    if isinstance(options, str) and "://" in options:
        lowered = key.lower()
        return (
            public_url(options) if "webhook" in lowered or "url" in lowered else redact_url(options)
        )
    return options

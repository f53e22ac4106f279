"""Errors a user can meet. Each message says what went wrong and what to do; the CLI
prints them without a traceback and exits non-zero, the API answers them as 4xx JSON."""

from __future__ import annotations


class StackFleetError(Exception):
    """Base of every error StackFleet reports to a user."""

    exit_code = 1


class ConfigError(StackFleetError):
    """Bad configuration: a malformed file, an unknown cloud name, a bad setting."""

    exit_code = 2


class CloudError(StackFleetError):
    """A cloud could not be reached or refused us (credentials, endpoint, scope)."""

    exit_code = 3


class NotFoundError(StackFleetError):
    """A resource, pass or object asked for by id does not exist."""

    exit_code = 4


class InvalidQueryError(StackFleetError):
    """A filter, field or paging argument is not valid for what is being listed.
    `field` names the request field at fault (the API's error body carries it)."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConflictError(StackFleetError):
    """The request is well-formed but the record's state does not allow it now: an
    action already decided, an alert already resolved, a lease at its extension cap."""

    exit_code = 2

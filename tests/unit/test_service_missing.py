"""A test missing a service it needs is skipped with the reason, or fails when the run
promised every service (STACKFLEET_TESTBED_REQUIRED=1)."""

from __future__ import annotations

import pytest
from support import REQUIRED_ENV, service_missing


def test_a_missing_service_fails_the_test_when_services_are_required(monkeypatch):
    monkeypatch.setenv(REQUIRED_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="RabbitMQ not reachable"):
        service_missing("RabbitMQ not reachable on 127.0.0.1:5672")


def test_a_missing_service_skips_the_test_with_its_reason_otherwise(monkeypatch):
    monkeypatch.delenv(REQUIRED_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="MariaDB not reachable.*REQUIRED=1"):
        service_missing("MariaDB not reachable on 127.0.0.1:3306")

"""The health model's verdicts: which signal combinations make a host failure (the only
one a recovery evacuates on), a process failure, or nothing to act on."""

from __future__ import annotations

from stackfleet.model.health import HostSignals, assess_fleet, assess_host


def signals(**changes: object) -> HostSignals:
    base = HostSignals(
        host="cmp1",
        service_state="up",
        service_status="enabled",
        heartbeat_age=3.0,
        heartbeat_allowed=15.0,
        probe="reachable",
        bmc_power="On",
        bmc_health="OK",
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_reporting_service_on_a_reachable_host_is_healthy():
    verdict = assess_host(signals())
    assert (verdict.state, verdict.failure) == ("healthy", "none")


def test_a_silent_service_on_an_unreachable_host_is_a_host_failure():
    verdict = assess_host(signals(heartbeat_age=40.0, probe="unreachable", probe_misses=3))
    assert (verdict.state, verdict.failure) == ("down", "host")
    assert verdict.host_failed
    assert any("management address" in e.text() for e in verdict.evidence)


def test_a_silent_service_with_its_bmc_off_is_a_host_failure():
    verdict = assess_host(signals(service_state="down", probe="unknown", bmc_power="Off"))
    assert verdict.failure == "host"


def test_a_silent_service_on_a_reachable_host_is_a_process_failure():
    verdict = assess_host(signals(heartbeat_age=40.0))
    assert (verdict.state, verdict.failure) == ("degraded", "process")
    assert not verdict.host_failed


def test_a_gone_rpc_consumer_on_a_reachable_host_is_a_process_failure_before_nova_notices():
    verdict = assess_host(signals(rpc_consumers=0))
    assert verdict.failure == "process"


def test_nova_down_alone_is_never_enough_to_act():
    verdict = assess_host(signals(service_state="down", probe="unknown", bmc_power=None))
    assert (verdict.state, verdict.failure) == ("down", "undetermined")
    assert not verdict.host_failed


def test_an_unreachable_host_whose_rpc_consumer_is_connected_is_not_acted_on():
    verdict = assess_host(
        signals(heartbeat_age=40.0, probe="unreachable", probe_misses=3, rpc_consumers=1)
    )
    assert verdict.failure == "undetermined"


def test_one_probe_miss_is_not_unreachable():
    verdict = assess_host(
        signals(heartbeat_age=40.0, probe="missing", probe_misses=1, bmc_power="On")
    )
    assert not verdict.host_failed


def test_more_than_half_the_hosts_down_freezes_recovery():
    down = assess_host(signals(heartbeat_age=40.0, probe="unreachable", probe_misses=3))
    up = assess_host(signals())
    assert assess_fleet([down, up], [], 50.0).frozen is None
    assert assess_fleet([down, down, up], [], 50.0).frozen
    assert assess_fleet([down, up, up], ["RabbitMQ: does not answer"], 50.0).frozen

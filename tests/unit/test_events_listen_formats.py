"""`stackfleet events listen -f yaml|csv|value` prints each notification in that format
(one YAML document, one CSV row under the header, one line), not the table line."""

from __future__ import annotations

import csv
import io

import pytest
import yaml

from stackfleet.cli.events import NOTIFICATION_COLUMNS, _print_notification
from stackfleet.cli.output import Format
from stackfleet.sources.notifications import Notification

FIP_CREATED = Notification(
    event_type="floatingip.create.end",
    payload={"floatingip": {"id": "fip-1", "port_id": None}},
    publisher_id="network.ctl1",
    timestamp="2026-11-25 19:00:00.000000",
)


def test_yaml_prints_one_document_per_notification(capsys: pytest.CaptureFixture[str]):
    _print_notification(FIP_CREATED, Format.yaml)
    _print_notification(FIP_CREATED, Format.yaml)
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(documents) == 2
    assert documents[0]["event_type"] == "floatingip.create.end"
    assert (documents[0]["kind"], documents[0]["id"]) == ("floating_ip", "fip-1")


def test_csv_prints_one_row_per_notification(capsys: pytest.CaptureFixture[str]):
    _print_notification(FIP_CREATED, Format.csv)
    out = capsys.readouterr().out
    row = dict(zip(NOTIFICATION_COLUMNS, next(csv.reader(io.StringIO(out))), strict=True))
    assert row["event_type"] == "floatingip.create.end"
    assert (row["kind"], row["id"], row["deleted"]) == ("floating_ip", "fip-1", "False")


def test_value_prints_the_columns_on_one_line(capsys: pytest.CaptureFixture[str]):
    _print_notification(FIP_CREATED, Format.value)
    assert capsys.readouterr().out.split()[-4:] == ["info", "floating_ip", "fip-1", "False"]

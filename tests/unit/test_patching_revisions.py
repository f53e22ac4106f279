"""Configuration revisions: content-addressed, diffable, kept with their history; INI
changes touch only the lines they change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from stackfleet.patching.connectors import ConnectorSpec, LocalConnector
from stackfleet.patching.ini import edit_ini
from stackfleet.patching.revisions import (
    apply_revision,
    capture,
    diff,
    differences,
    digest_of,
    record,
)
from stackfleet.patching.services import ServiceDefinition
from stackfleet.store import patching as records

NOVA = ServiceDefinition(config_files=["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"])


def _host(root: Path, host: str, text: str) -> LocalConnector:
    path = root / host / "etc/nova/nova.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return LocalConnector(ConnectorSpec(type="local", root=str(root)))


def test_the_same_content_has_the_same_digest_whatever_the_key_order():
    one = {"files": {"/a": "x\n", "/b": None}, "packages": {"p": "1"}, "images": {}}
    two = {"images": {}, "packages": {"p": "1"}, "files": {"/b": None, "/a": "x\n"}}
    assert digest_of(one) == digest_of(two)
    assert len(digest_of(one)) == 64


def test_crlf_line_endings_do_not_make_another_revision():
    unix = {"files": {"/a": "[DEFAULT]\ndebug = true\n"}}
    dos = {"files": {"/a": "[DEFAULT]\r\ndebug = true\r\n"}}
    assert digest_of(unix) == digest_of(dos)


def test_any_change_of_a_file_a_package_or_an_image_makes_another_revision():
    base = {"files": {"/a": "x\n"}, "packages": {"p": "1"}, "images": {"c": "img:1"}}
    assert digest_of(base) != digest_of({**base, "files": {"/a": "y\n"}})
    assert digest_of(base) != digest_of({**base, "packages": {"p": "2"}})
    assert digest_of(base) != digest_of({**base, "images": {"c": "img:2"}})
    assert digest_of(base) != digest_of({**base, "files": {"/a": "x\n", "/b": None}})


def test_capture_reads_the_service_files_of_a_host(tmp_path: Path):
    connector = _host(tmp_path, "cmp1", "[DEFAULT]\ndebug = false\n")
    revision = capture(connector, "cmp1", "nova-compute", NOVA)
    assert revision.content["files"] == {
        "/etc/nova/nova.conf": "[DEFAULT]\ndebug = false\n",
        "/etc/nova/nova-compute.conf": None,
    }
    # the same file on another host is the same revision
    _host(tmp_path, "cmp2", "[DEFAULT]\ndebug = false\n")
    assert capture(connector, "cmp2", "nova-compute", NOVA).digest == revision.digest


def test_diff_shows_changed_lines_packages_and_images():
    old = {"files": {"/etc/x.conf": "a = 1\nb = 2\n"}, "packages": {"nova": "1"}, "images": {}}
    new = {"files": {"/etc/x.conf": "a = 1\nb = 3\n"}, "packages": {"nova": "2"}, "images": {}}
    lines = diff(old, new, "old", "new")
    assert "-b = 2" in lines and "+b = 3" in lines
    assert "-nova=1" in lines and "+nova=2" in lines
    assert " a = 1" in lines
    assert differences(old, new) == ["/etc/x.conf", "package nova"]


def test_applying_a_revision_puts_its_files_back(tmp_path: Path):
    connector = _host(tmp_path, "cmp1", "[DEFAULT]\ndebug = false\n")
    tested = capture(connector, "cmp1", "nova-compute", NOVA)
    connector.write_file("cmp1", "/etc/nova/nova.conf", "[DEFAULT]\nbroken = true\n")
    changed = apply_revision(connector, tested.content, NOVA, "cmp1")
    assert changed == ["/etc/nova/nova.conf"]
    assert capture(connector, "cmp1", "nova-compute", NOVA).digest == tested.digest


def test_revisions_are_kept_once_with_their_history(store, tmp_path: Path):
    connector = _host(tmp_path, "cmp1", "[DEFAULT]\n")
    now = datetime.now(UTC)
    revision = capture(connector, "cmp1", "nova-compute", NOVA)
    digest = record(store, revision, now)
    assert record(store, revision, now, "applied", "c1") == digest
    records.mark_tested(store, "cmp1", "nova-compute", digest, now, "c1")
    events = [e["event"] for e in records.history(store, "cmp1", "nova-compute")]
    assert events == ["tested", "applied", "captured"]
    assert records.host_services(store) == [("cmp1", "nova-compute")]
    tested = records.last_tested(store, "cmp1", "nova-compute")
    assert tested is not None and tested["digest"] == digest
    assert records.get_revision(store, "cmp1", "nova-compute", digest[:8])["digest"] == digest


def test_an_ini_option_is_changed_where_it_is_and_comments_stay():
    text = (
        "# nova\n[DEFAULT]\n# ratio\ncpu_allocation_ratio = 16.0\ndebug = false\n"
        "\n[libvirt]\nx = 1\n"
    )
    edited = edit_ini(text, {"DEFAULT": {"cpu_allocation_ratio": "4.0"}})
    assert edited == text.replace("16.0", "4.0")


def test_an_ini_option_or_section_that_is_missing_is_added():
    text = "[DEFAULT]\ndebug = false\n\n[libvirt]\nx = 1\n"
    edited = edit_ini(
        text, {"DEFAULT": {"host": "cmp1"}, "compute": {"max": "2"}}, {"libvirt": ["x"]}
    )
    assert edited == "[DEFAULT]\ndebug = false\nhost = cmp1\n\n[libvirt]\n\n[compute]\nmax = 2\n"

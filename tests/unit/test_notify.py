"""Who a notification goes to: the resource's owner metadata, the configured project
map, the Keystone e-mail of its user, else the default recipients."""

from __future__ import annotations

from types import SimpleNamespace

from stackfleet.actions.notify import Notifier, NotifySettings, render


class FakeIdentity:
    def __init__(self, emails: dict[str, str]) -> None:
        self.emails = emails
        self.asked: list[str] = []

    def get_user(self, user_id: str) -> SimpleNamespace:
        self.asked.append(user_id)
        return SimpleNamespace(email=self.emails.get(user_id))


def notifier(**settings) -> Notifier:
    return Notifier(NotifySettings(**settings), project_names={"p1": "research"})


def conn(emails: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(identity=FakeIdentity(emails))


def test_owner_metadata_comes_first():
    record = {"metadata": {"owner": "alice@example.org"}, "project_id": "p1", "user_id": "u1"}
    found = notifier(owners={"research": ["lab@example.org"]}).owner_addresses(
        record, lambda: conn({})
    )
    assert found == ["alice@example.org"]


def test_the_project_map_by_id_or_name():
    record = {"project_id": "p1", "user_id": "u1"}
    assert notifier(owners={"research": ["lab@example.org"]}).owner_addresses(
        record, lambda: conn({})
    ) == ["lab@example.org"]
    assert notifier(owners={"p1": ["id@example.org"]}).owner_addresses(
        record, lambda: conn({})
    ) == ["id@example.org"]


def test_then_the_keystone_email_of_the_user():
    keystone = conn({"u1": "bob@example.org"})
    record = {"project_id": "p9", "user_id": "u1"}
    assert notifier().owner_addresses(record, lambda: keystone) == ["bob@example.org"]
    assert keystone.identity.asked == ["u1"]


def test_else_the_default_recipients():
    record = {"project_id": "p9", "user_id": "u2"}
    found = notifier(default_recipients=["ops@example.org"]).owner_addresses(
        record, lambda: conn({})
    )
    assert found == ["ops@example.org"]


def test_templates_fill_known_placeholders_and_keep_unknown_ones():
    assert render(
        "{kind} {name} by {deadline} {nope}", {"kind": "server", "name": "vm", "deadline": "x"}
    ) == ("server vm by x {nope}")


def test_a_notice_with_no_recipient_and_no_webhook_says_nobody_was_told():
    result = notifier().send([], "subject", "body", None)
    assert result["told_nobody"] == "no recipient address and no webhook configured"
    assert "told_nobody" not in notifier().send(["ops@example.org"], "s", "b", None)

"""The policy reference in docs/policies.md is the one the registries generate."""

from __future__ import annotations

from pathlib import Path

from stackfleet.policy.docs import reference_markdown

DOC = Path(__file__).parents[2] / "docs" / "policies.md"


def test_the_documented_reference_is_the_generated_one():
    text = DOC.read_text(encoding="utf-8")
    after_start = text.split("<!-- reference:start -->\n", 1)[1]
    documented = after_start.split("<!-- reference:end -->", 1)[0]
    assert documented == reference_markdown(), (
        "docs/policies.md is out of date: paste `stackfleet policy reference` between the "
        "reference markers"
    )


def test_every_filter_and_action_has_a_docstring():
    from stackfleet.actions import ACTIONS
    from stackfleet.policy.filters import FILTERS
    from stackfleet.policy.registry import doc_of

    assert all(doc_of(cls) for _name, cls in FILTERS)
    assert all(doc_of(cls) for _name, cls in ACTIONS.classes())

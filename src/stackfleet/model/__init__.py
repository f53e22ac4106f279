"""Resource kinds, their fields and relations, declared once (no I/O)."""

from stackfleet.model.kinds import KINDS, Field, Kind, Relation, kind

__all__ = ["KINDS", "Field", "Kind", "Relation", "kind"]

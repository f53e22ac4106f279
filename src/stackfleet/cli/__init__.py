"""The `stackfleet` command."""

"""Read-only sources: everything StackFleet learns about a fleet comes through here."""

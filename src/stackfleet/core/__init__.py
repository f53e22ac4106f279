"""Pieces every layer may import: typed errors, durations and timestamps, where data
and settings live, and delivery of notifications (webhook JSON, SMTP). Nothing here
imports the rest of StackFleet (see docs/architecture.md)."""

"""Patching and updates: configuration revisions captured through connectors (local,
SSH, Ansible), campaign specs, and the campaign reconciler (drain, apply, restart,
health gates, undrain; rollback to the last tested revision)."""

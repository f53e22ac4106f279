"""Provisioning: one declarative workload spec (VMs, bare metal, containers) planned
against what exists and applied through the safety gate and the audit log.

- `spec`: the YAML spec and its validation (file, line, field);
- `resolve`: the spec's names against the cloud (closest valid choices), the backend
  the service catalog allows, the best-fitting flavor for a size;
- `plan`: members (found by labels) and the diff (create / replace / delete / keep);
- `nova`, `ironic`, `zun`: the backends (list members, create and delete them, the
  verbs, as actions);
- `apply`: plan, quota and capacity check, apply, status, destroy;
- `manage`: the common verbs of `stackfleet workload` mapped to each backend;
- `approvals`: carrying out an approved provisioning action;
- `purge`: `stackfleet project purge`, dependency-ordered deletion of a project's
  resources.
"""

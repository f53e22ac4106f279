"""Provisioning: one declarative workload spec (VMs, bare metal, containers) planned
against what exists and applied through the safety gate and the audit log.

- `spec`: the YAML spec and its validation (file, line, field);
- `resolve`: the spec's names against the cloud (closest valid choices), the backend
  the service catalog allows, the best-fitting flavor for a size;
- `plan`: members (found by labels) and the diff (create / replace / delete / keep);
- `nova`: the Nova backend (list, create and delete members as actions);
- `apply`: plan, quota and capacity check, apply, status, destroy.
"""

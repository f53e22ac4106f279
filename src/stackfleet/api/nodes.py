"""One host over HTTP: ``GET /v1/nodes/{host}``, what `stackfleet nodes show HOST`
prints — inventory, capacity in use, hardware, services, network and storage roles,
instances. Answered from the store; no cloud or BMC is contacted."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api.deps import get_store
from stackfleet.api.errors import ErrorResponse
from stackfleet.api.hardware import policies_in_force
from stackfleet.engine.nodes import node_view

router = APIRouter(tags=["hardware"])


class NodeView(BaseModel):
    """One host: what the inventory, the hardware sweep and the capacity views know."""

    model_config = ConfigDict(extra="allow")

    host: str = Field(description="The host's short name (Nova compute host, agent host).")
    kind: str | None = Field(
        None, description="hypervisor or baremetal_node; absent for a network/storage host."
    )
    hardware: dict[str, Any] | None = Field(
        None,
        description="Newest BMC read: status, last good readings (readings_at says when, "
        "if the newest read failed).",
    )
    hardware_findings: list[str] = []
    services: list[str] = Field(description="Nova services, Neutron agents, Cinder services.")
    instances: int = Field(description="Servers on the host.")
    instance_names: list[str] = Field(description="Up to 50 of them, with their status.")


@router.get("/v1/nodes/{host}", response_model=NodeView, responses={404: {"model": ErrorResponse}})
def get_node(
    request: Request,
    host: Annotated[str, Path(description="Compute host, hypervisor hostname or node name.")],
) -> Any:
    """One host: inventory, capacity in use, hardware (newest sweep), services, instances."""
    return node_view(get_store(request), host, policies_in_force())

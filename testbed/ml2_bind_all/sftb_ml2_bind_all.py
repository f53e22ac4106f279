"""An ML2 mechanism driver that binds every port, for a testbed without agents.

Neutron's shipped drivers bind a port only where an L2 agent (or OVN) reports for the
port's host. The testbed runs no agents, so this driver binds any port on the first
segment it is offered, as an Open vSwitch port, and marks it ACTIVE as an agent would.
It is loaded through the ``neutron.ml2.mechanism_drivers`` entry point declared in the
``*.dist-info`` folder beside it (that folder must be on PYTHONPATH).
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return

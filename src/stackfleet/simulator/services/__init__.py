"""The simulated OpenStack services, one module per service.

Each module exposes ``build(sim, region) -> starlette.routing.Router`` (Keystone, which
is shared by every region: ``build(sim)``); `stackfleet.simulator.app.build_app` mounts
them under their path prefixes.
"""

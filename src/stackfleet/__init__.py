"""StackFleet: Day-2 fleet management for OpenStack clouds."""

__version__ = "0.1.0"

"""The python-openstackclient plugin module (entry point `openstack.cli.extension`:
`fleet`): its API name, versions, client factory and global options."""

from __future__ import annotations

import argparse
import os
from typing import Any

from stackfleet.osc.client import FleetClient

API_NAME = "fleet"
API_VERSION_OPTION = "os_fleet_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = {"1": "stackfleet.osc.client.FleetClient"}
SERVICE_TYPE = "fleet"


def make_client(instance: Any) -> FleetClient:
    """The fleet client of OSC's ClientManager: the URL from --fleet-url (or
    $STACKFLEET_URL), else the catalog's `fleet` endpoint for the cloud's region and
    interface; authenticated by --fleet-token ($STACKFLEET_API_TOKEN, a StackFleet local
    token) when given, else by the session's Keystone token."""
    options = instance._cli_options  # noqa: SLF001 - OSC's documented way to plugin options
    url = getattr(options, "fleet_url", None) or os.environ.get("STACKFLEET_URL")
    token = getattr(options, "fleet_token", None) or os.environ.get("STACKFLEET_API_TOKEN")
    if not url:
        url = instance.get_endpoint_for_service_type(
            SERVICE_TYPE, region_name=instance.region_name, interface=instance.interface
        )
    return FleetClient(session=instance.session if not token else None, url=url, token=token)


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """OSC's global options for the fleet API."""
    parser.add_argument(
        "--os-fleet-api-version",
        metavar="<fleet-api-version>",
        default=os.environ.get("OS_FLEET_API_VERSION", DEFAULT_API_VERSION),
        help="StackFleet API version (default: 1; env OS_FLEET_API_VERSION)",
    )
    parser.add_argument(
        "--fleet-url",
        metavar="<url>",
        default=os.environ.get("STACKFLEET_URL"),
        help="StackFleet API URL, instead of the catalog's 'fleet' endpoint (env STACKFLEET_URL)",
    )
    parser.add_argument(
        "--fleet-token",
        metavar="<token>",
        default=os.environ.get("STACKFLEET_API_TOKEN"),
        help="A StackFleet local API token instead of the Keystone token "
        "(env STACKFLEET_API_TOKEN)",
    )
    return parser

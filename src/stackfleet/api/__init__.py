"""The HTTP interface: the REST API (FastAPI, OpenAPI at /docs) and Prometheus /metrics."""

from stackfleet.api.app import create_app
from stackfleet.api.server import ApiServer, serve_api

__all__ = ["ApiServer", "create_app", "serve_api"]

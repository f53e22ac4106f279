"""The web dashboard: one HTML shell, plain ES modules (static/app/) and third-party
browser assets bundled at build time (static/vendor/, made by web/build-assets), served
by the API's own process under /ui, plus the API's docs pages (/docs, /redoc) from the
same bundled assets so they work offline. `install(app)` adds it all to an app."""

from stackfleet.web.pages import install

__all__ = ["install"]

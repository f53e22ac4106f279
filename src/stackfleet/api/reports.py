"""Report endpoints: the waste report (what reclaiming frees) and the compliance report
(per rule: pass/fail counts, offenders, trend over passes) as JSON or a standalone
HTML page — the same reports as `stackfleet waste report` and `stackfleet compliance
report`, over the built-in packs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import StringConstraints

from stackfleet.api.deps import get_store
from stackfleet.api.errors import ErrorResponse
from stackfleet.engine.reports import compliance_html, compliance_report, waste_report
from stackfleet.policy import load_files
from stackfleet.policy.loader import pack_names
from stackfleet.policy.schema import Policy

router = APIRouter()

# only a built-in pack's name: the schema lists them, so a wrong one is a 400 naming `pack`
PackName = Annotated[
    str, StringConstraints(pattern="^(" + "|".join(map(re.escape, pack_names())) + ")$")
]
_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}}


def _enabled(packs: list[str]) -> list[Policy]:
    """The enabled policies of built-in packs; an unknown pack is a 400 naming the
    packs there are (PolicyError)."""
    # a pack given twice is loaded once (twice would be duplicate policy names)
    names = dict.fromkeys(packs)
    return [p for p in load_files([f"pack:{name}" for name in names]) if p.spec.enabled]


@router.get("/v1/reports/waste", tags=["reports"], responses=_ERRORS)
def waste(
    request: Request,
    pack: Annotated[
        list[PackName] | None,
        Query(description="Built-in packs (repeatable); default: waste."),
    ] = None,
) -> JSONResponse:
    """What is reclaimable now and what reclaiming it frees, per waste policy, with a
    last `total` row: vCPU, RAM GB, disk GB, volume GB, floating IPs, ports, image GB.
    A dry-run: records no finding, changes nothing."""
    rows = waste_report(get_store(request), _enabled(pack or ["waste"]))
    return JSONResponse({"items": rows})


@router.get(
    "/v1/reports/compliance",
    tags=["reports"],
    responses={**_ERRORS, 200: {"content": {"application/json": {}, "text/html": {}}}},
)
def compliance(
    request: Request,
    pack: Annotated[
        list[PackName] | None,
        Query(description="Built-in packs (repeatable); default: security and ha."),
    ] = None,
    format: Annotated[
        Literal["json", "html"], Query(description="json, or html: a standalone page.")
    ] = "json",
) -> Response:
    """Per compliance rule: resources checked, passing, failing, the offenders and the
    number of open findings over the last passes. A GET changes nothing: the rules are
    evaluated without recording findings or alerts (`stackfleet compliance report` and
    the daemon's policy runs record them); no action runs."""
    results = compliance_report(
        get_store(request), _enabled(pack or ["security", "ha"]), record_findings=False
    )
    if format == "html":
        return HTMLResponse(compliance_html(results, datetime.now(UTC)))
    return JSONResponse({"items": [r.as_dict() for r in results]})

"""The API fuzzed with Schemathesis over its own OpenAPI document: every operation,
every check (server errors, schema conformance of statuses, headers and bodies,
schema-valid requests accepted, invalid ones refused, Allow on 405, ...), a few
deterministic examples per operation, against a store collected from the small
simulated cloud, with authentication off and on (an admin token from the simulator's
Keystone). Writes are included (approving actions, silences, leases, alerts), on a
throwaway store. benchmarks/fuzz_api.py is the same harness for the full run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("schemathesis")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

EXAMPLES = 4
SEED = 1


def harness() -> ModuleType:
    """benchmarks/fuzz_api.py, imported by path (benchmarks/ is not a package)."""
    path = Path(__file__).parents[2] / "benchmarks" / "fuzz_api.py"
    spec = importlib.util.spec_from_file_location("fuzz_api", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("auth", [False, True], ids=["auth-off", "auth-on"])
def test_fuzzing_the_api_finds_no_server_error_and_no_schema_violation(
    auth: bool, tmp_path: Path
) -> None:
    fuzz_api = harness()
    with fuzz_api.fuzz_target(auth, tmp_path) as (url, headers):
        report = fuzz_api.fuzz(url, headers, examples=EXAMPLES, seed=SEED)
    assert report.operations >= 40
    assert report.cases >= report.operations * EXAMPLES
    found = "\n".join(
        f"{check}: {operation} -> {status}\n    {curl[:600]}"
        for check, operation, status, curl in report.failures
    )
    assert report.ok, f"the fuzzer found {len(report.failures)} failures:\n{found}"

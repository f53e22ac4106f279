"""`stackfleet serve` against the simulator: its periodic jobs run and show in
GET /v1/jobs and on /metrics (scraped with the token of --metrics-token-file, as
Prometheus does with authorization.credentials_file), and Ctrl-C stops them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

CLOUD = "sim"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_runs_its_jobs_and_reports_them(tmp_path):
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        (tmp_path / "settings.yaml").write_text("{}\n")
        port = free_port()
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
        }
        env.pop("STACKFLEET_INFRA_CONFIG", None)
        scrape = tmp_path / "scrape.token"
        scrape.write_text("s3cr3t-scrape-token-0123456789\n")
        scrape.chmod(0o600)
        proc = subprocess.Popen(
            [sys.executable, "-m", "stackfleet.cli.main", "serve", "--os-cloud", CLOUD,
             "--port", str(port), "--pack", "waste", "--infra-config", os.devnull,
             "--metrics-token-file", str(scrape)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "serve.log").open("wb"),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            jobs: dict[str, dict] = {}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.5)
                try:
                    items = httpx.get(f"{url}/v1/jobs", timeout=10).json()["items"]
                except httpx.HTTPError:
                    continue
                jobs = {j["name"]: j for j in items}
                if all(jobs.get(n, {}).get("runs", 0) > 0 for n in ("collect", "policies")):
                    break
            log = (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
            # campaigns and drift: a campaign may be started with --detach at any time
            assert set(jobs) == {
                "collect",
                "policies",
                "quotas",
                "events",
                "campaigns",
                "drift",
            }, log
            collect, policies = jobs["collect"], jobs["policies"]
            assert collect["runs"] >= 1 and collect["failures"] == 0, (collect, log)
            assert collect["interval"] == 300 and collect["last_success"], collect
            assert policies["runs"] >= 1 and policies["leader_only"], (policies, log)
            assert jobs["events"]["runs"] > 0
            assert httpx.get(f"{url}/metrics").status_code == 401  # no token
            bearer = {"Authorization": "Bearer s3cr3t-scrape-token-0123456789"}
            scraped = httpx.get(f"{url}/metrics", headers=bearer)
            assert scraped.status_code == 200, scraped.text
            # the scrape token opens /metrics only
            assert httpx.post(f"{url}/v1/events", json={}, headers=bearer).status_code == 401
            families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
            runs = {s.labels["job"]: s.value for s in families["stackfleet_job_runs"].samples}
            assert runs["collect"] >= 1 and runs["events"] > 0
            last = families["stackfleet_job_last_success_timestamp_seconds"].samples
            assert {s.labels["job"] for s in last} >= {"collect", "policies"}
            assert {"stackfleet_job_failures", "stackfleet_job_duration_seconds"} <= set(families)
            findings = httpx.get(f"{url}/v1/findings").json()
            assert findings["items"], "the waste pack found nothing after the pass"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log = (tmp_path / "serve.log").read_text(errors="replace")
        # uvicorn re-raises the SIGINT it caught once it has shut down: 130
        assert proc.returncode in (0, 130), log[-3000:]
        assert "did not stop" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]

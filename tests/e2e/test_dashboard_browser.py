"""The web dashboard in a real browser: Playwright drives Debian's Chromium against the
API serving a collected simulated cloud (Keystone tokens from the simulator's Keystone,
as `stackfleet serve --auth-cloud` checks them). Every page loads with no console
error, the charts draw data, ack / silence / approve / extend go through the API, a
reader cannot approve, a campaign's batch is approved and its abort and rollback ask for
confirmation first, the demo's approvals say which are carried out at once, an unknown
host is a 404 page, an expired token brings the
sign-in prompt, and /docs and /redoc load with no request leaving the machine.

Screenshots go to the test's tmp folder, or to $STACKFLEET_SCREENSHOTS when set
(`STACKFLEET_SCREENSHOTS=docs/screenshots` refreshes the ones docs/dashboard.md shows).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_records import add_user, keystone_token

from stackfleet.alerts.lifecycle import ingest
from stackfleet.api.auth import KeystoneAuth
from stackfleet.api.server import ApiServer
from stackfleet.cli.demo_story import demo_policies
from stackfleet.engine.approved_now import CarryOutApproved
from stackfleet.engine.collect import collect
from stackfleet.engine.hardware import run_sweep, targets_for
from stackfleet.engine.policies import PolicyRunner
from stackfleet.model.workloads import META_WORKLOAD, workload_tag
from stackfleet.patching.spec import CampaignSpec
from stackfleet.policy import load_files, load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store import leases, open_store, recoveries
from stackfleet.store import patching as campaign_records
from stackfleet.store.metrics import Sample, record_samples
from stackfleet.web.pages import VENDOR_DIR

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLOUD = "sim"
APPROVAL_POLICY = """policies:
  - name: errored-servers-review
    description: Servers in ERROR, reported to their owners after an operator's approval.
    resource: server
    filters: [{status: ERROR}]
    actions: [{type: notify, to: [ops@example.org]}]
    safety: {require_approval: true}
"""

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (scripts/bootstrap test installs it)",
    ),
]


@dataclass
class Dashboard:
    url: str
    store: Any
    tokens: dict[str, str]
    host: str
    shots: Path
    clouds: Path
    auth: KeystoneAuth
    console: list[str] = field(default_factory=list)


def add_system_reader(server: SimulatorServer, name: str) -> str:
    """A user with the reader role on the system in the simulator's Keystone, and a
    system-scoped token of it."""
    add_user(server, name, "system", "reader")
    return keystone_token(server, name, None)


# how many pixels of the heatmap's canvas are painted
PAINTED = """(() => {
  const canvas = document.querySelector("canvas.heatmap-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i]) painted += 1;
  return painted;
})()"""
WORKLOAD = "web-frontend"
CAMPAIGN = "nova-kernel-2026-12"
# a campaign whose spec asks for per-batch approval, its canary done, batch 1 waiting
WAITING = "nova-ini-2026-12"
TESTED = "7e57ed" + "0" * 58
# a policy run by hand against the demo's cloud: none of the demo's packs
HAND_POLICY = """policies:
  - name: errored-servers-escalation
    description: Servers in ERROR, escalated after an operator's approval.
    resource: server
    filters: [{status: ERROR}]
    actions: [{type: notify, to: [oncall@example.org]}]
    safety: {require_approval: true}
"""


def label_workload(server: SimulatorServer, name: str, count: int) -> None:
    """Make `count` ACTIVE servers of one project members of workload `name` (the tag and
    metadata provisioning sets), so the next pass derives the workload."""
    region = next(iter(server.state.regions.values()))
    active = [s for s in region.servers.values() if s.get("status") == "ACTIVE"]
    project = active[0]["tenant_id"]
    for index, member in enumerate([s for s in active if s["tenant_id"] == project][:count]):
        member["tags"] = [*(member.get("tags") or []), workload_tag(name)]
        member["metadata"] = {**(member.get("metadata") or {}), META_WORKLOAD: name}
        member["metadata"]["stackfleet-member"] = str(index)


def record_host_use(store: Any, hypervisor: dict[str, Any]) -> None:
    """Real use of one host, as the usage job samples it (CPU 87 %, RAM 42 %)."""
    ts = datetime.now(UTC).timestamp()
    record_samples(
        store,
        [
            Sample(hypervisor["cloud"], hypervisor["region"], "hypervisor", hypervisor["id"], *m)
            for m in (("cpu_util", ts, 87.0), ("memory_used_percent", ts, 42.0))
        ],
    )


def record_recovery(store: Any, host: str, now: datetime) -> None:
    """A dry-run host recovery as the health job records one: its evidence and steps."""
    recovery = recoveries.create(
        store,
        now,
        cloud=CLOUD,
        region="RegionOne",
        kind="host",
        subject=host,
        trigger="host down",
        status="dry-run",
        execute=False,
        evidence=["nova-compute heartbeat 95 s old", "management port closed", "BMC power On"],
        details={},
    )
    for seq, (name, details) in enumerate(
        [("fence", {"power": "Off", "bmc": f"{host}-bmc"}), ("evacuate", {"servers": 2})], 1
    ):
        step = recoveries.start_step(store, recovery, seq, name, host, now)
        recoveries.finish_step(store, step["id"], now, "planned", details=details)


def record_campaign(
    store: Any, hosts: list[str], now: datetime, name: str = CAMPAIGN, waiting: bool = False
) -> None:
    """A patching campaign, the canary done: running, the next batch under way; or
    (`waiting`) awaiting the approval of the next batch, as the runner leaves it."""
    spec = CampaignSpec.model_validate(
        {
            "name": name,
            "cloud": CLOUD,
            "targets": {"hosts": {"names": hosts}, "services": ["nova-compute"]},
        }
    ).model_dump(mode="json")
    batches = [hosts[:1], hosts[1:]]
    steps = ["pre-check", "drain", "apply", "restart", "gate", "undrain"]
    plan: dict[str, Any] = {"name": name, "cloud": CLOUD, "region": "RegionOne"}
    campaign_records.create_campaign(
        store,
        name,
        spec,
        {**plan, "batches": batches, **({"waiting_batch": 1} if waiting else {})},
        "",
        [
            (h, b, i, s)
            for b, batch in enumerate(batches)
            for h in batch
            for i, s in enumerate(steps)
        ],
        now,
        status="awaiting-approval" if waiting else "running",
    )
    campaign = campaign_records.get_campaign(store, name)
    for step in campaign_records.steps_of(store, campaign["id"]):
        if step["host"] == hosts[0]:
            campaign_records.set_step(store, step["id"], status="done")
        elif not waiting and step["host"] == hosts[1] and step["step"] in ("pre-check", "drain"):
            campaign_records.set_step(
                store, step["id"], status="done" if step["position"] == 0 else "running"
            )


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The small simulated cloud collected, its packs run as a dry-run (findings), an
    action waiting for approval, two alerts, a lease and two hardware sweeps; the API
    (and so the dashboard) serving it with Keystone tokens."""
    assert (VENDOR_DIR / "versions.json").is_file(), "run web/build-assets first"
    workdir = tmp_path_factory.mktemp("dashboard")
    shots = Path(os.environ.get("STACKFLEET_SCREENSHOTS") or workdir / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{workdir / 'stackfleet.db'}")
    with SimulatorServer(preset("small")) as cloud:
        clouds = cloud.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        label_workload(cloud, WORKLOAD, 3)
        collect(store, CLOUD, None, None, [str(clouds)])
        packs = [
            p for p in load_files(["pack:waste", "pack:security", "pack:ha"]) if p.spec.enabled
        ]
        PolicyRunner(store).run(packs, execute=False)
        PolicyRunner(store).run(load_text(APPROVAL_POLICY), execute=True)
        now = datetime.now(UTC)
        ingest(
            store,
            [
                {"labels": {"alertname": "DiskFull", "severity": "critical", "host": "cmp-001"}},
                {"labels": {"alertname": "FanSlow", "severity": "warning", "host": "cmp-002"}},
            ],
            "api",
            now,
        )
        server = store.list_resources("server", filters={"status": "ACTIVE"}, limit=1)[0][0]
        leases.create(
            store,
            policy="server-lease",
            cloud=server["cloud"],
            region=server["region"],
            kind="server",
            resource_id=server["id"],
            resource_name=server["name"],
            project_id=server["project_id"],
            stage="marked",
            started_at=now,
            next_at=now + timedelta(days=30),
            updated_at=now,
            extended_seconds=0.0,
            max_extension_seconds=10 * 86400.0,
            reminded=[],
            history=[],
        )
        with RedfishSimulator(bmcs_for_cloud(cloud.state)) as bmcs:
            bmc_map = bmcs.write_bmc_map(workdir / "bmc-map.yaml")
            for _ in range(2):
                run_sweep(store, targets_for(store, bmc_map, include_ironic=False))
        hypervisors = store.list_resources("hypervisor")[0]
        hosts = sorted(h["host"] for h in hypervisors)
        host = next(h["host"] for h in hypervisors if h.get("status") == "up")
        host_of_id = next(h for h in hypervisors if h["host"] == host)
        record_recovery(store, hosts[0], now)
        record_campaign(store, hosts[:3], now)
        record_campaign(store, hosts[:3], now, WAITING, waiting=True)
        # the canary's nova-compute revision was tested: what a rollback puts back
        campaign_records.save_revision(store, hosts[0], "nova-compute", TESTED, {}, now)
        campaign_records.mark_tested(store, hosts[0], "nova-compute", TESTED, now, "earlier")
        record_host_use(store, host_of_id)
        reader = add_system_reader(cloud, "fleet-auditor")
        admin = connect(CLOUD, config_files=[str(clouds)])[0].conn
        auth = KeystoneAuth(admin, read="open", cloud=CLOUD)

        with ApiServer(store, keystone=auth) as url:
            tokens = {"admin": admin.auth_token, "reader": reader}
            yield Dashboard(url, store, tokens, host, shots, Path(clouds), auth)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A fresh browser tab that records console errors and any request leaving
    127.0.0.1 (refused: the dashboard and the docs pages must work offline)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    dashboard.console = []
    outside: list[str] = []

    def route(request_route: Any) -> None:
        if urlsplit(request_route.request.url).hostname not in ("127.0.0.1", "localhost"):
            outside.append(request_route.request.url)
            request_route.abort()
        else:
            request_route.continue_()

    tab.route("**/*", route)
    tab.on(
        "console",
        lambda message: dashboard.console.append(message.text) if message.type == "error" else None,
    )
    tab.on("pageerror", lambda error: dashboard.console.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not outside, f"requests left the machine: {outside}"


def sign_in(page: Any, dashboard: Dashboard, who: str) -> None:
    """Sign in through the prompt, and wait for the page drawn again with the token."""
    renders = int(page.evaluate("document.body.dataset.renders || 0"))
    page.get_by_role("button", name="Sign in").first.click()
    page.get_by_label("Token").fill(dashboard.tokens[who])
    page.locator("#login-form button[type=submit]").click()
    page.get_by_text("Signed in as").wait_for()
    # (wait_for_function evaluates a string: the page's CSP forbids that)
    for _ in range(200):
        if int(page.evaluate("document.body.dataset.renders || 0")) > renders:
            return
        page.wait_for_timeout(50)
    raise AssertionError("the page was not drawn again after signing in")


def open_page(page: Any, dashboard: Dashboard, path: str) -> None:
    page.goto(f"{dashboard.url}{path}")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#main > div:not([aria-busy])")


def shot(page: Any, dashboard: Dashboard, name: str) -> None:
    page.screenshot(path=str(dashboard.shots / f"{name}.png"))


@pytest.mark.parametrize(
    ("path", "heading", "name"),
    [
        ("/ui/", "Fleet overview", "overview"),
        ("/ui/findings", "Findings & alerts", "findings"),
        ("/ui/actions", "Actions & approvals", "actions"),
        ("/ui/leases", "Leases", "leases"),
        ("/ui/infrastructure", "Databases & RabbitMQ", "infrastructure"),
        ("/ui/recoveries", "Recoveries", "recoveries"),
        ("/ui/workloads", "Workloads", "workloads"),
        ("/ui/campaigns", "Campaigns", "campaigns"),
    ],
)
def test_every_page_loads_without_a_console_error(
    page: Any, dashboard: Dashboard, path: str, heading: str, name: str
) -> None:
    open_page(page, dashboard, path)
    assert page.get_by_role("heading", level=1).inner_text() == heading
    shot(page, dashboard, name)
    assert dashboard.console == []


def test_the_overview_shows_the_fleet_with_its_charts(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/")
    hypervisors = len(dashboard.store.list_resources("hypervisor")[0])
    # the heatmap: a canvas with a tile per host in each of three maps, painted
    canvas = page.locator(f'canvas.heatmap-canvas[data-drawn="{3 * hypervisors}"]')
    canvas.wait_for()
    assert canvas.get_attribute("data-mode") == "allocation"
    assert page.evaluate(PAINTED) > 0
    # the full list as a table, on demand: one link per host
    page.get_by_text(f"All {hypervisors} hosts as a table").click()
    assert page.locator(".hosts-table a").count() == hypervisors
    page.locator(".uplot canvas").first.wait_for()
    assert page.get_by_text("Reclaimable waste").is_visible()
    assert "security" in page.locator("#p-compliance-per-pack").locator("..").inner_text()
    assert "critical" in page.locator("#p-alerts-by-severity").locator("..").inner_text()
    assert dashboard.console == []


def test_the_heatmap_shows_real_use_and_keeps_the_choice(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/?poll_ms=200")
    page.get_by_role("radio", name="Real use (usage samples)").check()
    page.locator('canvas.heatmap-canvas[data-mode="use"]').wait_for()
    assert "heat=use" in page.url
    assert "1 of" in page.get_by_text("hosts report CPU and RAM use").inner_text()
    # the keyboard reaches every host: the status reads the selected one's use
    canvas = page.locator("canvas.heatmap-canvas")
    canvas.focus()
    for _ in range(200):
        if canvas.get_attribute("data-selected") == dashboard.host:
            break
        page.keyboard.press("ArrowRight")
    status = page.locator(".heat-status").inner_text()
    assert status.startswith(dashboard.host) and "CPU 87 %" in status and "RAM 42 %" in status
    shot(page, dashboard, "overview-use")
    # a new pass redraws the page: the choice stays
    renders = int(page.evaluate("document.body.dataset.renders"))
    collect(dashboard.store, CLOUD, None, None, [str(dashboard.clouds)])
    for _ in range(300):
        if int(page.evaluate("document.body.dataset.renders")) > renders:
            break
        page.wait_for_timeout(50)
    page.locator('canvas.heatmap-canvas[data-mode="use"]').wait_for()
    assert page.get_by_role("radio", name="Real use (usage samples)").is_checked()
    # Enter opens the selected host
    page.locator("canvas.heatmap-canvas").focus()
    page.keyboard.press("End")
    last = page.locator("canvas.heatmap-canvas").get_attribute("data-selected")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=f"Host {last}").wait_for()
    assert dashboard.console == []


def test_a_host_page_charts_its_hardware_readings(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/")
    page.get_by_text("hosts as a table").click()
    page.locator(f'.hosts-table a[href="/ui/hosts/{dashboard.host}"]').click()
    page.wait_for_url(f"**/ui/hosts/{dashboard.host}")
    page.get_by_role("heading", name=f"Host {dashboard.host}").wait_for()
    page.locator(".uplot canvas").first.wait_for()
    # two sweeps: power and temperatures drawn as series
    assert page.locator("figure.chart .uplot").count() >= 2
    assert "nova-compute" in page.locator("#p-services-and-agents").locator("..").inner_text()
    shot(page, dashboard, "host")
    assert dashboard.console == []


def test_a_new_pass_updates_the_page_without_a_reload(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/?poll_ms=200")
    newest = dashboard.store.list_passes(limit=1)[0]["id"]
    page.get_by_text(f"newest pass #{newest} ").wait_for()
    page.evaluate("window.stillTheSamePage = true")
    collect(dashboard.store, CLOUD, None, None, [str(dashboard.clouds)])
    page.get_by_text(f"newest pass #{newest + 1} ").wait_for(timeout=15_000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert dashboard.console == []


def test_an_unknown_host_is_a_404_page(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/hosts/no-such-host")
    assert "404" in page.get_by_role("heading", level=1).inner_text()
    assert "no-such-host" in page.locator("#main").inner_text()
    open_page(page, dashboard, "/ui/no/such/page")
    assert "404" in page.get_by_role("heading", level=1).inner_text()
    shot(page, dashboard, "not-found")
    for path, said in (
        ("/ui/recoveries/999999", "No recovery #999999"),
        ("/ui/campaigns/no-such-campaign", "No campaign called “no-such-campaign”"),
    ):
        open_page(page, dashboard, path)
        assert "404" in page.get_by_role("heading", level=1).inner_text()
        assert said in page.locator("#main").inner_text()
    assert dashboard.console == [] or all("404" in line for line in dashboard.console)


def test_an_expired_token_brings_the_sign_in_prompt(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/ui/")
    page.evaluate("sessionStorage.setItem('stackfleet-token', 'expired-or-revoked')")
    page.reload()
    dialog = page.locator("dialog#login")
    dialog.wait_for(state="visible")
    assert "expired" in dialog.inner_text()
    shot(page, dashboard, "sign-in")
    # signing in again brings the page back
    page.get_by_label("Token").fill(dashboard.tokens["admin"])
    page.locator("#login-form button[type=submit]").click()
    page.get_by_role("heading", name="Fleet overview").wait_for()


def test_ack_and_silence_go_through_the_api(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/findings")
    sign_in(page, dashboard, "admin")
    page.get_by_role("button", name="Acknowledge DiskFull", exact=False).click()
    page.get_by_text("Acknowledged DiskFull").wait_for()
    alerts = httpx.get(f"{dashboard.url}/v1/alerts", timeout=10).json()["items"]
    [disk] = [a for a in alerts if a["alertname"] == "DiskFull"]
    assert disk["state"] == "acknowledged" and disk["acked_by"] == "admin"

    page.get_by_role("button", name="Silence FanSlow", exact=False).click()
    page.get_by_label("For").select_option("1h")
    page.get_by_label("Comment").fill("fan swap booked")
    page.get_by_role("button", name="Create silence").click()
    page.get_by_text("Silenced FanSlow for 1h").wait_for()
    silences = httpx.get(f"{dashboard.url}/v1/silences", timeout=10).json()["items"]
    [made] = [s for s in silences if s["comment"] == "fan swap booked"]
    assert {"name": "alertname", "op": "=", "value": "FanSlow"} in made["matchers"]
    ends = datetime.fromisoformat(made["ends_at"])
    assert timedelta(minutes=55) < ends - datetime.now(UTC) <= timedelta(hours=1)
    assert dashboard.console == []


def _pending(dashboard: Dashboard) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{dashboard.url}/v1/actions", params={"status": "awaiting-approval"}, timeout=10
    )
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_reader_cannot_approve_and_is_told_why(page: Any, dashboard: Dashboard) -> None:
    before = _pending(dashboard)
    assert before, "the fixture queued actions for approval"
    open_page(page, dashboard, "/ui/actions")
    sign_in(page, dashboard, "reader")
    page.get_by_text("Only an operator may approve").wait_for()
    page.get_by_role("button", name=f"Approve action {before[0]['id']}", exact=False).click()
    notice = page.locator("#notice.error")
    notice.wait_for()
    assert "fleet-auditor may not POST" in notice.inner_text()
    assert len(_pending(dashboard)) == len(before)


def test_an_operator_approves_a_plan_with_its_diff(page: Any, dashboard: Dashboard) -> None:
    [first, *_] = _pending(dashboard)
    open_page(page, dashboard, "/ui/actions")
    sign_in(page, dashboard, "admin")
    card = page.locator(f'article[data-action="{first["id"]}"]')
    assert first["plan"]["summary"] in card.inner_text()
    # outside the demo an approval lets the next run with --execute act: said on the page
    assert "next run with --execute" in page.locator("[data-approval-runs]").inner_text()
    shot(page, dashboard, "approvals")
    card.get_by_role("button", name="Approve", exact=False).click()
    page.get_by_text(f"Approved action {first['id']}").wait_for()
    assert first["id"] not in {a["id"] for a in _pending(dashboard)}
    page.get_by_role("button", name="Verify the hash chain").click()
    page.get_by_text("the hash chain is intact").wait_for()
    assert dashboard.console == []


def test_a_lease_is_extended_within_its_cap(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/leases")
    sign_in(page, dashboard, "admin")
    page.get_by_label("Days").fill("3")
    page.get_by_role("button", name="Extend").click()
    page.get_by_text("Extended the lease").wait_for()
    page.get_by_text("3 of 10 days").wait_for()  # the page re-read the lease
    [lease] = httpx.get(f"{dashboard.url}/v1/leases", timeout=10).json()["items"]
    assert lease["extended_days"] == pytest.approx(3)
    # past the cap (10 days): the API's 409 is shown on the page
    page.get_by_label("Days").fill("30")
    page.get_by_role("button", name="Extend").click()
    assert "allows at most 10 days" in page.locator("#notice.error").inner_text()


def test_a_recovery_shows_its_steps_and_evidence(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/recoveries")
    [recovery] = httpx.get(f"{dashboard.url}/v1/recoveries", timeout=10).json()["items"]
    row = page.get_by_role("row").filter(has_text=recovery["subject"])
    assert "dry-run" in row.inner_text()
    row.get_by_role("link", name=f"Recovery {recovery['id']}").click()
    page.get_by_role("heading", name=f"Recovery #{recovery['id']}: host").wait_for()
    assert "management port closed" in page.locator("#p-evidence").locator("..").inner_text()
    steps = page.get_by_role("list", name="Steps")
    assert "fence" in steps.inner_text() and "bmc" in steps.inner_text()
    assert page.locator("[data-step]").count() == 2
    shot(page, dashboard, "recovery")
    assert dashboard.console == []


def test_the_workloads_page_shows_members_and_health(page: Any, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/ui/workloads")
    row = page.get_by_role("row").filter(has_text=WORKLOAD)
    assert page.get_by_label("3 of 3 members healthy").is_visible()
    assert "servers" in row.inner_text() and "nova" in row.inner_text()
    [workload] = httpx.get(f"{dashboard.url}/v1/workloads", timeout=10).json()["items"]
    assert all(name in row.inner_text() for name in workload["member_names"])
    assert dashboard.console == []


def test_a_reader_cannot_pause_a_campaign_and_an_operator_can(
    page: Any, dashboard: Dashboard
) -> None:
    open_page(page, dashboard, "/ui/campaigns")
    page.get_by_role("link", name=CAMPAIGN).click()
    page.get_by_role("heading", name=f"Campaign {CAMPAIGN}").wait_for()
    assert page.get_by_label("1 of 3 hosts done").first.is_visible()
    sign_in(page, dashboard, "reader")
    page.get_by_text("Only an operator may pause").wait_for()
    pause = page.get_by_role("button", name=f"Pause campaign {CAMPAIGN}")
    assert pause.is_disabled()
    assert page.get_by_role("button", name=f"Abort campaign {CAMPAIGN}").is_disabled()
    # the API refuses the reader as well (a button enabled by hand changes nothing)
    refused = httpx.post(
        f"{dashboard.url}/v1/campaigns/{CAMPAIGN}/pause",
        headers={"X-Auth-Token": dashboard.tokens["reader"]},
        timeout=10,
    )
    assert refused.status_code == 403
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, dashboard, "admin")
    page.get_by_role("button", name=f"Pause campaign {CAMPAIGN}").click()
    page.get_by_text(f"Campaign {CAMPAIGN}: pause done").wait_for()
    page.get_by_role("button", name=f"Resume campaign {CAMPAIGN}").wait_for()
    campaign = httpx.get(f"{dashboard.url}/v1/campaigns/{CAMPAIGN}", timeout=10).json()
    assert campaign["status"] == "paused"
    audit = httpx.get(f"{dashboard.url}/v1/audit", params={"limit": 5}, timeout=10).json()
    assert any(e["event"] == "campaign.paused" and e["actor"] == "admin" for e in audit["items"])
    assert dashboard.console == []


def _campaign(dashboard: Dashboard, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{dashboard.url}/v1/campaigns/{name}", timeout=10).json()
    return answer


def _audit(dashboard: Dashboard) -> list[dict[str, Any]]:
    answer = httpx.get(f"{dashboard.url}/v1/audit", params={"limit": 50}, timeout=10)
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _confirming(page: Any, button: Any, accept: bool) -> str:
    """Click `button`, answer the confirmation it asks for; its message ("" if none)."""
    messages: list[str] = []

    def answer(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", answer)
    button.click()
    for _ in range(100):
        if messages:
            return messages[0]
        page.wait_for_timeout(50)
    return ""


def _waiting_campaign_page(page: Any, dashboard: Dashboard, who: str) -> str:
    """The page of the campaign recorded awaiting approval, signed in as `who`; the
    name of its canary host."""
    canary: str = _campaign(dashboard, WAITING)["batches"][0][0]
    open_page(page, dashboard, f"/ui/campaigns/{WAITING}")
    sign_in(page, dashboard, who)
    return canary


def test_a_reader_finds_batch_approval_and_rollback_off_and_the_api_refuses_them(
    page: Any, dashboard: Dashboard
) -> None:
    canary = _waiting_campaign_page(page, dashboard, "reader")
    page.get_by_text("Only an operator may pause, resume, abort, approve").wait_for()
    for name in (
        f"Approve batch 1 of campaign {WAITING}",
        f"Roll back campaign {WAITING}",
        f"Roll back host {canary}",
    ):
        button = page.get_by_role("button", name=name, exact=True)
        assert button.is_disabled(), name
        assert "Only an operator" in (button.get_attribute("title") or ""), name
    # the API refuses the reader as well
    for verb, body in (("approve", {}), ("rollback", {"execute": True})):
        refused = httpx.post(
            f"{dashboard.url}/v1/campaigns/{WAITING}/{verb}",
            json=body,
            headers={"X-Auth-Token": dashboard.tokens["reader"]},
            timeout=10,
        )
        assert refused.status_code == 403, verb
    assert _campaign(dashboard, WAITING)["status"] == "awaiting-approval"
    assert dashboard.console == []


def test_an_operator_approves_a_waiting_batch_and_the_campaign_goes_on(
    page: Any, dashboard: Dashboard
) -> None:
    canary = _waiting_campaign_page(page, dashboard, "admin")
    page.get_by_text("Batch 1 waits for an operator's approval").wait_for()
    shot(page, dashboard, "campaign")
    # a rollback shows the API's dry-run for confirmation first; dismissed: nothing done
    rollback = page.get_by_role("button", name=f"Roll back host {canary}", exact=True)
    asked = _confirming(page, rollback, accept=False)
    assert canary in asked and f"back to {TESTED[:12]}" in asked, asked
    assert not [e for e in _audit(dashboard) if "roll" in e["event"]]

    page.get_by_role("button", name=f"Approve batch 1 of campaign {WAITING}").click()
    page.get_by_text(f"Campaign {WAITING}: batch 1 approved").wait_for()
    # drawn again: nothing waiting, running, batch 1 approved, no approval offered
    page.locator("[data-waiting]").wait_for(state="detached")
    assert "running" in page.locator("#p-where-it-stands").locator("..").inner_text()
    assert "(approved)" in page.get_by_role("list", name="Batches").inner_text()
    assert page.get_by_role("button", name="Approve batch", exact=False).count() == 0
    campaign = _campaign(dashboard, WAITING)
    assert campaign["status"] == "running" and campaign["approved_batches"] == [1]
    assert any(
        e["event"] == "campaign.batch-approved" and e["actor"] == "admin" for e in _audit(dashboard)
    )
    assert dashboard.console == []


def test_aborting_a_campaign_asks_first(page: Any, dashboard: Dashboard) -> None:
    _waiting_campaign_page(page, dashboard, "admin")
    before = _campaign(dashboard, WAITING)["status"]
    abort = page.get_by_role("button", name=f"Abort campaign {WAITING}")
    asked = _confirming(page, abort, accept=False)
    assert asked.startswith(f"Abort campaign {WAITING}?"), asked
    assert _campaign(dashboard, WAITING)["status"] == before
    assert _confirming(page, abort, accept=True)
    page.get_by_text(f"Campaign {WAITING}: abort done").wait_for()
    assert _campaign(dashboard, WAITING)["status"] == "aborted"
    assert dashboard.console == []


def test_in_the_demo_an_approval_of_another_policy_says_it_waits_for_its_next_run(
    page: Any, dashboard: Dashboard
) -> None:
    """The demo carries out its own packs' approvals at once; an action of a policy run
    by hand is not, and its card and the notice say so (it stays approved)."""
    PolicyRunner(dashboard.store).run(load_text(HAND_POLICY), execute=True)
    demo = CarryOutApproved(demo_policies(), [str(dashboard.clouds)])
    with ApiServer(dashboard.store, keystone=dashboard.auth, carry_out_approved=demo) as url:
        queued = httpx.get(
            f"{url}/v1/actions",
            params={"status": "awaiting-approval", "policy": "errored-servers-escalation"},
            timeout=10,
        ).json()
        first = queued["items"][0]
        assert first["on_approval"] == "next-run"
        page.goto(f"{url}/ui/actions")
        page.wait_for_selector("body[data-ready=true]")
        sign_in(page, dashboard, "admin")
        assert "carried out at once" in page.locator("[data-approval-runs]").inner_text()
        card = page.locator(f'article[data-action="{first["id"]}"]')
        said = card.locator("[data-on-approval]")
        assert said.get_attribute("data-on-approval") == "next-run"
        assert "next run with --execute" in said.inner_text()
        card.get_by_role("button", name="Approve", exact=False).click()
        notice = page.get_by_text(f"Approved action {first['id']}")
        notice.wait_for()
        assert "runs at its policy's next run" in notice.inner_text()
        actions = httpx.get(f"{url}/v1/actions", params={"limit": 200}, timeout=10).json()
        [after] = [a for a in actions["items"] if a["id"] == first["id"]]
        assert after["status"] == "approved" and after["executed_at"] is None
    assert dashboard.console == []


@pytest.mark.parametrize(("path", "text"), [("/docs", "StackFleet"), ("/redoc", "StackFleet")])
def test_the_api_docs_render_offline(page: Any, dashboard: Dashboard, path: str, text: str):
    page.goto(f"{dashboard.url}{path}")
    page.get_by_text(text, exact=False).first.wait_for()
    page.get_by_text("/v1/overview", exact=False).first.wait_for(timeout=20_000)
    shot(page, dashboard, path.strip("/"))

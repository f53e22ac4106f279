// Overview: hosts by state per region and zone, the utilization heatmap, alerts by
// severity, reclaimable waste, compliance per pack, capacity headroom, last passes.
import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { badge, h, panel, pct, stat, table, when } from "../dom.js";
import { MODES, heatmap } from "../heatmap.js";

export const title = () => "Overview";

const SEVERITIES = ["critical", "major", "warning", "minor", "info", "none"];

export async function render(view, _params, ctx) {
  // the hosts as one list per field: a quarter of the bytes of one object per host
  const data = await api("/v1/overview?hosts=columns");
  const cols = data.host_columns;
  data.hosts = cols.host.map((host, i) => ({ host, cloud: cols.cloud[i], region: cols.region[i], zone: cols.zone[i], state: cols.state[i], enabled: cols.enabled[i] }));
  if (data.reports_pending) {
    // the newest pass's reports are being computed: look again in a moment
    setTimeout(() => view.isConnected && ctx.rerender(), 3000);
  }
  view.append(
    h("h1", {}, "Fleet overview"),
    h("p", { class: "muted" }, "As of ", when(data.generated_at), passLine(data.passes[0])),
    h(
      "div",
      { class: "grid" },
      hostsPanel(data),
      alertsPanel(data.alerts),
      pending(data, wastePanel(data.waste)),
      pending(data, compliancePanel(data.compliance)),
      pending(data, capacityPanel(data.capacity)),
      findingsPanel(data.findings, data.hardware),
      heatmap(cols, { mode: heatMode(), onMode: rememberMode, navigate: ctx.navigate }),
      passesPanel(data.passes),
    ),
  );
}

// a report panel while the newest pass's reports are computed
function pending(data, section) {
  if (!data.reports_pending) return section;
  const note = data.reports_pass === null
    ? "Computing the reports of the newest pass…"
    : `Showing the reports of pass #${data.reports_pass}; those of the newest pass are being computed…`;
  section.setAttribute("aria-busy", "true");
  section.querySelector("h2").after(h("p", { class: "muted", role: "status" }, note));
  return section;
}

function passLine(last) {
  if (!last) return " — no pass yet.";
  return [` — newest pass #${last.id} (${last.cloud}/${last.region}) `, badge(last.status), " ended ", when(last.finished_at)];
}

function hostsPanel(data) {
  const groups = new Map();
  for (const host of data.hosts) {
    const key = `${host.cloud}/${host.region} · ${host.zone || "no zone"}`;
    const counts = groups.get(key) || { up: 0, down: 0, disabled: 0, total: 0 };
    counts.total += 1;
    if (host.state === "down") counts.down += 1;
    else counts.up += 1;
    if (host.enabled === "disabled") counts.disabled += 1;
    groups.set(key, counts);
  }
  const rows = [...groups.entries()].sort().map(([place, c]) => ({ place, ...c }));
  const down = data.hosts.filter((x) => x.state === "down");
  return panel(
    "Hosts",
    h("dl", { class: "stats" },
      stat("Hypervisors", data.hosts.length),
      stat("Down", down.length),
      stat("Servers", data.servers),
    ),
    table(
      [
        { label: "Region · zone", value: (r) => r.place },
        { label: "Up", value: (r) => r.up, num: true },
        { label: "Down", value: (r) => (r.down ? badge(r.down, "st-down") : "0"), num: true },
        { label: "Disabled", value: (r) => r.disabled, num: true },
      ],
      rows,
      { caption: "Hosts by region and zone", empty: "No hypervisors collected yet." },
    ),
    down.length ? h("p", {}, "Down: ", down.slice(0, 10).map((x, i) => [i ? ", " : "", h("a", { href: `/ui/hosts/${encodeURIComponent(x.host || x.name)}` }, x.host || x.name)])) : null,
  );
}


function alertsPanel(alerts) {
  const rows = SEVERITIES.filter((s) => alerts[s]).map((severity) => ({ severity, ...alerts[severity] }));
  for (const severity of Object.keys(alerts)) if (!SEVERITIES.includes(severity)) rows.push({ severity, ...alerts[severity] });
  return panel(
    "Alerts by severity",
    table(
      [
        { label: "Severity", value: (r) => badge(r.severity, "sev") },
        { label: "Firing", value: (r) => r.total || 0, num: true },
        { label: "Acknowledged", value: (r) => r.acknowledged || 0, num: true },
        { label: "Silenced", value: (r) => r.silenced || 0, num: true },
      ],
      rows,
      { caption: "Firing alerts by severity", empty: "No alert is firing." },
    ),
    h("p", {}, h("a", { href: "/ui/findings" }, "All alerts and findings")),
  );
}

function wastePanel(rows) {
  const total = rows.find((r) => r.policy === "total") || {};
  const items = rows.filter((r) => r.policy !== "total" && r.count);
  return panel(
    "Reclaimable waste",
    h("dl", { class: "stats" },
      stat("Resources", total.count || 0),
      stat("vCPU", total.vcpus || 0),
      stat("RAM GB", total.ram_gb || 0),
      stat("Volume GB", total.volume_gb || 0),
      stat("Floating IPs", total.floating_ips || 0),
    ),
    table(
      [
        { label: "Policy", value: (r) => r.policy },
        { label: "Resources", value: (r) => r.count, num: true },
        { label: "vCPU", value: (r) => r.vcpus, num: true },
        { label: "RAM GB", value: (r) => r.ram_gb, num: true },
      ],
      items,
      { caption: "Waste per policy", empty: "Nothing to reclaim." },
    ),
  );
}

function compliancePanel(packs) {
  return panel(
    "Compliance per pack",
    table(
      [
        { label: "Pack", value: (r) => r.pack },
        { label: "Score", value: (r) => h("span", {}, r.score === null ? "-" : `${r.score} %`), num: true },
        { label: "Rules passing", value: (r) => `${r.passing_rules} / ${r.rules}`, num: true },
        { label: "Failing resources", value: (r) => r.failing, num: true },
        { label: "Failing rules", value: (r) => r.failing_rules.map((f) => `${f.policy} (${f.failing})`).join(", ") || "-" },
      ],
      packs,
      { caption: "Compliance score per pack" },
    ),
  );
}

function capacityPanel(regions) {
  return panel(
    "Capacity headroom",
    table(
      [
        { label: "Region", value: (r) => `${r.cloud}/${r.region}` },
        { label: "Usable hosts", value: (r) => `${r.usable_hosts} / ${r.hosts}`, num: true },
        { label: "vCPU allocated", value: (r) => meter(r.vcpu_percent) },
        { label: "RAM allocated", value: (r) => meter(r.memory_mb_percent) },
        { label: "N+1", value: (r) => (r.n_plus_one ? [badge(r.n_plus_one.survives ? "ok" : "fail"), r.n_plus_one.survives ? "" : ` ${r.n_plus_one.reason || ""}`] : "-") },
      ],
      regions,
      { caption: "Capacity per region", empty: "No capacity data yet." },
    ),
  );
}

function meter(value) {
  if (value === null || value === undefined) return "-";
  const v = Math.max(0, Math.min(100, Number(value)));
  return h("div", {}, h("div", { class: "bar", role: "meter", "aria-valuenow": v.toFixed(0), "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": `${v.toFixed(0)} % allocated` }, h("span", { style: `width:${v}%` })), pct(value));
}

function findingsPanel(findings, hardware) {
  const rows = Object.entries(findings).flatMap(([pack, policies]) => Object.entries(policies).map(([policy, count]) => ({ pack, policy, count })));
  return panel(
    "Open findings and hardware",
    table(
      [
        { label: "Pack", value: (r) => r.pack },
        { label: "Policy", value: (r) => h("a", { href: `/ui/findings?policy=${encodeURIComponent(r.policy)}` }, r.policy) },
        { label: "Open", value: (r) => r.count, num: true },
      ],
      rows.sort((a, b) => b.count - a.count),
      { caption: "Open findings per policy", empty: "No open finding (policies record findings when they run)." },
    ),
    h("p", {}, "Hardware (hosts with a BMC): ", Object.keys(hardware).length ? Object.entries(hardware).map(([s, n], i) => [i ? ", " : "", badge(s), ` ${n}`]) : "no BMC swept yet"),
  );
}

// the heatmap's mode (allocation or use) lives in the URL, so a live update keeps it
function heatMode() {
  const mode = new URLSearchParams(location.search).get("heat");
  return mode in MODES ? mode : "allocation";
}

function rememberMode(mode) {
  const url = new URL(location.href);
  if (mode === "allocation") url.searchParams.delete("heat");
  else url.searchParams.set("heat", mode);
  history.replaceState(history.state, "", url);
}

function passesPanel(passes) {
  const ordered = [...passes].reverse().filter((p) => p.started_at && p.finished_at);
  const x = ordered.map((p) => Date.parse(p.started_at) / 1000);
  const seconds = ordered.map((p) => (Date.parse(p.finished_at) - Date.parse(p.started_at)) / 1000);
  return h("section", { class: "panel wide", "aria-labelledby": "p-passes" },
    h("h2", { id: "p-passes" }, "Last passes"),
    h("div", { class: "charts" },
      lineChart({ title: "Pass duration (s)", x, series: [{ label: "seconds", values: seconds }], unit: " s", height: 150 }),
      table(
        [
          { label: "Pass", value: (p) => `#${p.id}` },
          { label: "Cloud/region", value: (p) => `${p.cloud}/${p.region}` },
          { label: "Status", value: (p) => badge(p.status) },
          { label: "Started", value: (p) => when(p.started_at) },
          { label: "Ended", value: (p) => when(p.finished_at) },
        ],
        passes,
        { caption: "Newest passes", empty: "No pass yet." },
      ),
    ),
  );
}

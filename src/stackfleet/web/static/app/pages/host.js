// Host detail: allocation and usage, hardware readings as charts, its instances,
// services and agents, findings and the history of its state. Unknown host: 404 page.
import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { badge, h, panel, table, when } from "../dom.js";
import { notFoundView } from "./not-found.js";

export const title = (params) => `Host ${params.host}`;

const CHARTS = [
  { title: "CPU use (%)", metrics: ["cpu_util"], unit: " %" },
  { title: "Memory use (%)", metrics: ["memory_used_percent"], unit: " %" },
  { title: "Power draw (W)", metrics: ["hw_power_watts"], unit: " W" },
  { title: "Temperatures (°C)", metrics: ["hw_inlet_celsius", "hw_cpu_celsius"], unit: "°" },
  { title: "Slowest fan (rpm)", metrics: ["hw_fan_rpm_min"], unit: "" },
  { title: "Healthy PSUs", metrics: ["hw_psus_healthy"], unit: "" },
];

export async function render(view, params) {
  const name = params.host;
  let node;
  try {
    node = await api(`/v1/nodes/${encodeURIComponent(name)}`);
  } catch (error) {
    if (error.status === 404) {
      notFoundView(view, `No host called “${name}”: not a hypervisor, bare-metal node, network or storage node of the last pass.`);
      return;
    }
    throw error;
  }
  const hours = Number(new URLSearchParams(location.search).get("hours")) || 6;
  const [series, servers, findings, record] = await Promise.all([
    node.kind ? api(`/v1/nodes/${encodeURIComponent(name)}/series?hours=${hours}`) : Promise.resolve({ series: {} }),
    api(`/v1/resources?kind=server&host=${encodeURIComponent(node.host)}&limit=200`),
    node.kind ? api(`/v1/findings?kind=${node.kind}&status=open&limit=1000`) : Promise.resolve({ items: [] }),
    node.kind && node.id ? api(`/v1/resources/${node.kind}/${encodeURIComponent(node.id)}`) : Promise.resolve({ changes: [] }),
  ]);
  const mine = findings.items.filter((f) => f.resource_id === node.id);
  view.append(
    h("h1", {}, `Host ${node.host} `, badge(node.state || "unknown")),
    h("p", { class: "muted" }, [node.kind, node.cloud && `${node.cloud}/${node.region}`, node.enabled].filter(Boolean).join(" · ")),
    h("div", { class: "grid" },
      panel("Allocation and use",
        table(
          [
            { label: "Resource", value: (r) => r.label },
            { label: "Used", value: (r) => r.value },
          ],
          [
            ["vCPU", node.vcpu_used], ["PCPU", node.pcpu_used], ["RAM MB", node.memory_mb_used], ["Disk GB", node.disk_gb_used],
            ["CPU use (now)", node.usage && node.usage.cpu_util !== undefined ? `${node.usage.cpu_util} %` : null],
          ].filter(([, v]) => v).map(([label, value]) => ({ label, value })),
          { caption: "Allocation", empty: "No allocation data." },
        ),
      ),
      panel("Hardware",
        node.hardware
          ? table([{ label: "Reading", value: (r) => r[0] }, { label: "Value", value: (r) => (r[0] === "status" ? badge(r[1]) : String(r[1] ?? "-")) }],
            Object.entries(node.hardware).filter(([, v]) => typeof v !== "object" || v === null), { caption: "Hardware readings" })
          : h("p", { class: "empty" }, "No BMC reading for this host."),
        node.hardware_findings && node.hardware_findings.length ? h("ul", {}, node.hardware_findings.map((f) => h("li", {}, f))) : null,
      ),
      panel("Services and agents",
        node.services.length ? h("ul", {}, node.services.map((s) => h("li", {}, s))) : h("p", { class: "empty" }, "No service or agent on this host."),
      ),
      panel("Findings",
        table(
          [
            { label: "Policy", value: (f) => f.policy },
            { label: "Severity", value: (f) => badge(f.severity, "sev") },
            { label: "Since", value: (f) => when(f.opened_at) },
          ],
          mine,
          { caption: "Open findings of this host", empty: "No open finding." },
        ),
      ),
    ),
    h("section", { class: "panel wide", "aria-labelledby": "p-series" },
      h("h2", { id: "p-series" }, `Usage and hardware, last ${hours} h`),
      chartsOf(series.series || {}),
    ),
    h("div", { class: "grid" },
      panel(`Instances (${servers.total})`,
        table(
          [
            { label: "Name", value: (s) => s.name },
            { label: "Status", value: (s) => badge(s.status) },
            { label: "Project", value: (s) => s.project_id || "-" },
            { label: "Flavor", value: (s) => s.flavor_name || s.flavor_id || "-" },
          ],
          servers.items,
          { caption: "Servers on this host", empty: "No server on this host." },
        ),
      ),
      panel("History",
        (record.changes || []).length
          ? h("ol", { class: "timeline" }, record.changes.map((c) => h("li", {}, when(c.at || c.changed_at), ` ${c.field}: ${c.old ?? "-"} → ${c.new ?? "-"}`)))
          : h("p", { class: "empty" }, "No recorded change of its state."),
      ),
    ),
  );
}

function chartsOf(series) {
  const charts = [];
  for (const spec of CHARTS) {
    const present = spec.metrics.filter((m) => series[m] && series[m].length);
    if (!present.length) continue;
    // align the metrics of one chart on the first one's timestamps
    const x = series[present[0]].map(([ts]) => ts);
    const lines = present.map((m) => {
      const byTime = new Map(series[m].map(([ts, v]) => [ts, v]));
      return { label: m, values: x.map((ts) => (byTime.has(ts) ? byTime.get(ts) : null)) };
    });
    charts.push(lineChart({ title: spec.title, x, series: lines, unit: spec.unit }));
  }
  return charts.length ? h("div", { class: "charts" }, charts) : h("p", { class: "empty" }, "No usage or hardware samples for this host in this window.");
}

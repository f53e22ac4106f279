// Findings and alerts: firing alerts (acknowledge, resolve, silence with an expiry),
// active silences (expire), and the findings, filtered by status, policy and kind
// (the filters live in the URL, so a reload or a live update keeps them).
import { api, post } from "../api.js";
import { badge, h, panel, table, when } from "../dom.js";

export const title = () => "Findings & alerts";

const DURATIONS = ["1h", "2h", "8h", "1d", "7d"];

export async function render(view, _params, ctx) {
  const query = new URLSearchParams(location.search);
  const filters = { status: query.get("status") ?? "open", policy: query.get("policy") || "", kind: query.get("kind") || "" };
  const offset = Number(query.get("offset")) || 0;
  const findingQuery = new URLSearchParams({ limit: "50", offset: String(offset) });
  for (const [k, v] of Object.entries(filters)) if (v) findingQuery.set(k, v);
  const [alerts, silences, findings] = await Promise.all([
    api("/v1/alerts?status=firing&limit=500"),
    api("/v1/silences").catch((error) => ({ items: [], error })),
    api(`/v1/findings?${findingQuery}`),
  ]);
  view.append(
    h("h1", {}, "Findings & alerts"),
    alertsSection(alerts.items, ctx),
    silencesSection(silences, ctx),
    findingsSection(findings, filters, offset, ctx),
  );
}

async function act(ctx, what, call) {
  try {
    await call();
    ctx.notice(what, "ok");
    await ctx.rerender();
  } catch (error) {
    ctx.notice(error.message, "error");
  }
}

function alertsSection(items, ctx) {
  return panel(
    `Firing alerts (${items.length})`,
    table(
      [
        { label: "Severity", value: (a) => badge(a.severity, "sev") },
        { label: "Alert", value: (a) => h("span", {}, a.alertname, h("br"), h("small", { class: "muted" }, labelText(a.labels))) },
        { label: "State", value: (a) => badge(a.state) },
        { label: "Since", value: (a) => when(a.starts_at) },
        { label: "Actions", value: (a) => alertButtons(a, ctx) },
      ],
      items,
      { caption: "Firing alerts", empty: "No alert is firing." },
    ),
  );
}

function labelText(labels) {
  return Object.entries(labels || {})
    .filter(([k]) => k !== "alertname")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function alertButtons(alert, ctx) {
  const box = h("div", { class: "buttons" });
  const name = `${alert.alertname} #${alert.id}`;
  if (alert.state === "firing") {
    box.append(h("button", { type: "button", "aria-label": `Acknowledge ${name}`, onclick: () => act(ctx, `Acknowledged ${name}.`, () => post(`/v1/alerts/${alert.id}/ack`)) }, "Ack"));
  }
  box.append(
    h("button", { type: "button", class: "secondary", "aria-label": `Silence ${name}`, onclick: (e) => silenceForm(e.target, alert, ctx) }, "Silence"),
    h("button", { type: "button", class: "secondary", "aria-label": `Resolve ${name}`, onclick: () => act(ctx, `Resolved ${name}.`, () => post(`/v1/alerts/${alert.id}/resolve`)) }, "Resolve"),
  );
  return box;
}

function silenceForm(button, alert, ctx) {
  const cell = button.closest("td");
  const id = `silence-${alert.id}`;
  const matchers = [`alertname=${alert.alertname}`, ...Object.entries(alert.labels || {}).filter(([k]) => ["host", "resource_id", "project_id"].includes(k)).map(([k, v]) => `${k}=${v}`)];
  const form = h("form", { class: "inline", "aria-label": `Silence ${alert.alertname}` },
    h("div", {}, h("label", { for: `${id}-d` }, "For"), h("select", { id: `${id}-d`, name: "duration" }, DURATIONS.map((d) => h("option", { value: d, selected: d === "2h" }, d)))),
    h("div", {}, h("label", { for: `${id}-c` }, "Comment"), h("input", { id: `${id}-c`, name: "comment", type: "text" })),
    h("p", { class: "muted" }, `Matches ${matchers.join(", ")}`),
    h("button", { type: "submit" }, "Create silence"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    act(ctx, `Silenced ${alert.alertname} for ${data.get("duration")}.`, () =>
      post("/v1/silences", { matchers, duration: data.get("duration"), comment: data.get("comment") || "" }),
    );
  });
  cell.replaceChildren(form);
  form.querySelector("select").focus();
}

function silencesSection(silences, ctx) {
  if (silences.error) return panel("Silences", h("p", { class: "error" }, silences.error.message));
  return panel(
    `Active silences (${silences.items.length})`,
    table(
      [
        { label: "Matchers", value: (s) => s.matchers.map((m) => `${m.name}${m.op || "="}${m.value}`).join(", ") },
        { label: "Ends", value: (s) => when(s.ends_at) },
        { label: "By", value: (s) => s.created_by },
        { label: "Comment", value: (s) => s.comment || "-" },
        { label: "", value: (s) => h("button", { type: "button", class: "secondary", "aria-label": `Expire silence ${s.id}`, onclick: () => act(ctx, `Silence ${s.id} expired.`, () => api(`/v1/silences/${s.id}`, { method: "DELETE" })) }, "Expire") },
      ],
      silences.items,
      { caption: "Active silences", empty: "No active silence." },
    ),
  );
}

function findingsSection(page, filters, offset, ctx) {
  const form = h("form", { class: "inline", role: "search", "aria-label": "Filter findings" },
    h("div", {}, h("label", { for: "f-status" }, "Status"), h("select", { id: "f-status", name: "status" }, ["open", "resolved", ""].map((s) => h("option", { value: s, selected: s === filters.status }, s || "both")))),
    h("div", {}, h("label", { for: "f-policy" }, "Policy"), h("input", { id: "f-policy", name: "policy", value: filters.policy })),
    h("div", {}, h("label", { for: "f-kind" }, "Kind"), h("input", { id: "f-kind", name: "kind", value: filters.kind })),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) params.set(k, String(v));
    ctx.navigate(`/ui/findings?${params}`);
  });
  const pager = h("p", {},
    `${page.total ? offset + 1 : 0}–${offset + page.items.length} of ${page.total}`,
    offset > 0 ? [" ", h("a", { href: pageHref(filters, Math.max(0, offset - 50)) }, "Previous")] : null,
    page.links && page.links.next ? [" ", h("a", { href: pageHref(filters, offset + 50) }, "Next")] : null,
  );
  return panel(
    "Findings",
    form,
    table(
      [
        { label: "Policy", value: (f) => f.policy },
        { label: "Severity", value: (f) => badge(f.severity, "sev") },
        { label: "Resource", value: (f) => resourceLink(f) },
        { label: "Project", value: (f) => f.project_id || "-" },
        { label: "Status", value: (f) => badge(f.status) },
        { label: "Opened", value: (f) => when(f.opened_at) },
      ],
      page.items,
      { caption: "Findings", empty: "No finding matches." },
    ),
    pager,
  );
}

function pageHref(filters, offset) {
  const params = new URLSearchParams({ ...filters, offset: String(offset) });
  return `/ui/findings?${params}`;
}

function resourceLink(finding) {
  const label = `${finding.kind} ${finding.resource_name || finding.resource_id}`;
  if (finding.kind === "hypervisor" && finding.resource_name) {
    return h("a", { href: `/ui/hosts/${encodeURIComponent(finding.resource_name)}` }, label);
  }
  return label;
}

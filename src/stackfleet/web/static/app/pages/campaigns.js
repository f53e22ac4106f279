// Patching campaigns: each campaign's batches and progress; a campaign's page shows
// every host's steps (batch by batch) and, for operators, pause / resume / abort (the
// API refuses anyone else; the buttons are off for a token that may not write).
import { api, post } from "../api.js";
import { badge, h, panel, stat, table, when } from "../dom.js";
import { readOr404 } from "./not-found.js";

export const title = (params) => (params.name ? `Campaign ${params.name}` : "Campaigns");

const STEPS = ["pre-check", "drain", "apply", "restart", "gate", "undrain", "rollback"];
const VERBS = [
  { verb: "pause", label: "Pause", when: ["running", "awaiting-approval"] },
  { verb: "resume", label: "Resume", when: ["paused", "halted"] },
  { verb: "abort", label: "Abort", when: ["running", "paused", "halted", "awaiting-approval"], danger: true },
];

export async function render(view, params, ctx) {
  if (params.name) return renderOne(view, params.name, ctx);
  const list = await api("/v1/campaigns");
  view.append(
    h("h1", {}, "Campaigns"),
    panel(`Patching campaigns (${list.items.length})`,
      table(
        [
          { label: "Campaign", value: (c) => h("a", { href: `/ui/campaigns/${encodeURIComponent(c.name)}` }, c.name) },
          { label: "Where", value: (c) => `${c.cloud || "-"}/${c.region || "-"}` },
          { label: "Status", value: (c) => badge(c.status) },
          { label: "Batches", value: (c) => c.batches.length, num: true },
          { label: "Hosts done", value: (c) => progress(c), num: true },
          { label: "Failed", value: (c) => c.hosts_failed, num: true },
          { label: "Updated", value: (c) => when(c.updated_at) },
          { label: "Error", value: (c) => c.error || "" },
        ],
        list.items,
        { caption: "Patching campaigns", empty: "No campaign yet (stackfleet campaign start SPEC --execute)." },
      ),
    ),
  );
}

function progress(c) {
  return h("span", { "aria-label": `${c.hosts_done} of ${c.hosts} hosts done` }, `${c.hosts_done} of ${c.hosts}`);
}

async function renderOne(view, name, ctx) {
  const c = await readOr404(view, `/v1/campaigns/${encodeURIComponent(name)}`, `No campaign called “${name}”.`);
  if (!c) return;
  const byHost = new Map();
  for (const s of c.steps) {
    if (!byHost.has(s.host)) byHost.set(s.host, { host: s.host, batch: s.batch, steps: {}, error: null });
    const row = byHost.get(s.host);
    row.steps[s.step] = s;
    row.error = row.error || s.error;
  }
  const rows = [...byHost.values()];
  view.append(
    h("p", {}, h("a", { href: "/ui/campaigns" }, "← All campaigns")),
    h("h1", {}, `Campaign ${c.name}`),
    h("div", { class: "grid" },
      panel("Where it stands",
        h("dl", { class: "stats" },
          stat("Status", badge(c.status)),
          stat("Hosts done", progress(c)),
          stat("Failed", c.hosts_failed),
          stat("Where", `${c.cloud || "-"}/${c.region || "-"}`),
        ),
        c.waiting_batch !== null && c.waiting_batch !== undefined ? h("p", {}, `Batch ${c.waiting_batch} waits for approval (stackfleet campaign approve ${c.name}).`) : null,
        c.error ? h("p", { class: "error", role: "alert" }, c.error) : null,
        controls(c, ctx),
      ),
      panel("Batches",
        h("ol", { start: "0", "aria-label": "Batches" }, c.batches.map((hosts, i) =>
          h("li", {}, h("strong", {}, i === 0 ? "canary" : `batch ${i}`), `: ${hosts.join(", ")}`,
            c.approved_batches.includes(i) ? h("span", { class: "muted" }, " (approved)") : null))),
      ),
    ),
    panel("Steps by host",
      table(
        [
          { label: "Host", value: (r) => h("a", { href: `/ui/hosts/${encodeURIComponent(r.host)}` }, r.host) },
          { label: "Batch", value: (r) => (r.batch === 0 ? "canary" : r.batch), num: true },
          ...STEPS.filter((name) => rows.some((r) => r.steps[name])).map((name) => ({
            label: name,
            value: (r) => (r.steps[name] ? stepCell(r.steps[name]) : "-"),
          })),
          { label: "Error", value: (r) => (r.error ? h("span", { class: "error" }, r.error) : "") },
        ],
        rows,
        { caption: "Steps by host", empty: "No host step recorded." },
      ),
    ),
  );
}

function stepCell(s) {
  const title = [s.started_at && `started ${s.started_at}`, s.finished_at && `ended ${s.finished_at}`].filter(Boolean).join(", ");
  return h("span", { title: title || null, dataset: { step: s.step, status: s.status } }, badge(s.status));
}

function controls(c, ctx) {
  const offered = VERBS.filter((v) => v.when.includes(c.status));
  if (!offered.length) return h("p", { class: "muted" }, `A campaign that is ${c.status} takes no pause, resume or abort.`);
  return h("div", {},
    ctx.canWrite ? null : h("p", { class: "muted" }, "Only an operator may pause, resume or abort: sign in with an operator's token."),
    h("div", { class: "buttons" }, offered.map((v) =>
      h("button", {
        type: "button",
        class: v.danger ? "danger" : null,
        disabled: !ctx.canWrite,
        "aria-label": `${v.label} campaign ${c.name}`,
        onclick: async () => {
          if (v.danger && !window.confirm(`Abort campaign ${c.name}? Nothing more starts; hosts stay as they are.`)) return;
          try {
            await post(`/v1/campaigns/${encodeURIComponent(c.name)}/${v.verb}`);
            ctx.notice(`Campaign ${c.name}: ${v.verb} done.`, "ok");
            await ctx.rerender();
          } catch (error) {
            ctx.notice(error.message, "error");
          }
        },
      }, v.label))),
  );
}


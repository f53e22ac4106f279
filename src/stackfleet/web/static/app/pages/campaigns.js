// Patching campaigns: each campaign's batches and progress; a campaign's page shows
// every host's steps (batch by batch) and, for operators, pause / resume / abort, the
// approval of a batch waiting for one, and a rollback to the last tested revision (of
// the whole campaign or of one host: the API's dry-run is shown for confirmation
// first). The API refuses anyone else; the buttons are off, saying why, for a token
// that may not write.
import { api, post } from "../api.js";
import { badge, h, panel, stat, table, when } from "../dom.js";
import { readOr404 } from "./not-found.js";

export const title = (params) => (params.name ? `Campaign ${params.name}` : "Campaigns");

const STEPS = ["pre-check", "drain", "apply", "restart", "gate", "undrain", "rollback"];
// a rollback is offered once a campaign is not being carried out (as the API allows)
const ROLLBACK_WHEN = ["paused", "halted", "aborted", "completed", "awaiting-approval"];
const OPERATOR_ONLY = "Only an operator may pause, resume, abort, approve a batch or roll back: sign in with an operator's token.";
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
        waiting(c) ? h("p", { "data-waiting": "" }, `Batch ${c.waiting_batch} waits for an operator's approval (or stackfleet campaign approve ${c.name}).`) : null,
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
          ...(rollbackOffered(c) ? [{ label: "Roll back", value: (r) => (changed(r) ? rollbackButton(c, ctx, r.host) : "") }] : []),
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

const waiting = (c) => c.status === "awaiting-approval" && c.waiting_batch !== null && c.waiting_batch !== undefined;

// a host whose change began (as the API's rollback counts them)
const changed = (row) => ["apply", "rebuild"].some((name) => ["done", "running", "failed"].includes(row.steps[name]?.status));

const rollbackOffered = (c) => ROLLBACK_WHEN.includes(c.status) && c.steps.some((s) => ["apply", "rebuild"].includes(s.step) && ["done", "running", "failed"].includes(s.status));

function button(label, aria, ctx, onclick, danger = false) {
  return h("button", {
    type: "button",
    class: danger ? "danger" : null,
    disabled: !ctx.canWrite,
    title: ctx.canWrite ? null : OPERATOR_ONLY,
    "aria-label": aria,
    onclick,
  }, label);
}

async function act(ctx, path, body, done) {
  try {
    const answer = await post(path, body);
    ctx.notice(done(answer), "ok");
    await ctx.rerender();
  } catch (error) {
    ctx.notice(error.message, "error");
  }
}

function approveButton(c, ctx) {
  return button(`Approve batch ${c.waiting_batch}`, `Approve batch ${c.waiting_batch} of campaign ${c.name}`, ctx, () =>
    act(ctx, `/v1/campaigns/${encodeURIComponent(c.name)}/approve`, {}, () => `Campaign ${c.name}: batch ${c.waiting_batch} approved; it goes on.`));
}

// the API's dry-run first: the operator confirms the revisions that would be put back
function rollbackButton(c, ctx, host) {
  const what = host ? `host ${host}` : `campaign ${c.name}`;
  return button(host ? "Roll back" : "Roll back…", `Roll back ${what}`, ctx, async () => {
    const path = `/v1/campaigns/${encodeURIComponent(c.name)}/rollback`;
    const body = host ? { hosts: [host] } : {};
    let plan;
    try {
      plan = await post(path, body);
    } catch (error) {
      ctx.notice(error.message, "error");
      return;
    }
    const lines = plan.targets.map((t) => `${t.host} ${t.service}: back to ${t.digest.slice(0, 12)} (tested ${t.tested_at || "-"})`);
    if (!window.confirm(`Roll back ${what}? Each host gets its last tested revision back, is restarted and gated:\n${lines.join("\n")}`)) return;
    await act(ctx, path, { ...body, execute: true }, (answer) => {
      const failed = answer.results.filter((r) => r.status !== "rolled-back");
      return failed.length
        ? `Rollback of ${what}: ${failed.map((r) => `${r.host} failed (${r.error})`).join("; ")}`
        : `Rolled back ${what}: ${answer.results.map((r) => r.host).join(", ")}.`;
    });
  }, true);
}

function controls(c, ctx) {
  const offered = VERBS.filter((v) => v.when.includes(c.status));
  const extra = [waiting(c) ? approveButton(c, ctx) : null, rollbackOffered(c) ? rollbackButton(c, ctx, null) : null].filter(Boolean);
  if (!offered.length && !extra.length) return h("p", { class: "muted" }, `A campaign that is ${c.status} takes no pause, resume, abort or rollback.`);
  return h("div", {},
    ctx.canWrite ? null : h("p", { class: "muted" }, OPERATOR_ONLY),
    h("div", { class: "buttons" }, ...extra, offered.map((v) =>
      button(v.label, `${v.label} campaign ${c.name}`, ctx, async () => {
        if (v.danger && !window.confirm(`Abort campaign ${c.name}? Nothing more starts; hosts stay as they are.`)) return;
        await act(ctx, `/v1/campaigns/${encodeURIComponent(c.name)}/${v.verb}`, {}, () => `Campaign ${c.name}: ${v.verb} done.`);
      }, v.danger))),
  );
}

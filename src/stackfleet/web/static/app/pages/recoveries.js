// Recoveries: what the health job found (hosts by verdict, whether recovery is frozen)
// and the recoveries it started, newest first; a recovery's page lists its steps with
// the evidence each one read back from OpenStack.
import { api } from "../api.js";
import { badge, h, panel, stat, table, when } from "../dom.js";
import { readOr404 } from "./not-found.js";

export const title = (params) => (params.id ? `Recovery #${params.id}` : "Recoveries");

export async function render(view, params) {
  if (params.id) return renderOne(view, params.id);
  const [list, hosts] = await Promise.all([api("/v1/recoveries?limit=200"), api("/v1/health/hosts")]);
  const states = countBy(hosts.items, (v) => v.state);
  view.append(
    h("h1", {}, "Recoveries"),
    h("div", { class: "grid" },
      panel("Compute hosts by health",
        hosts.items.length
          ? h("dl", { class: "stats" }, Object.entries(states).map(([state, n]) => stat(state, n)))
          : h("p", { class: "empty" }, "No health verdict yet: the health job has not run (settings: health.enabled)."),
        h("p", { class: hosts.frozen ? "error" : "muted" },
          hosts.frozen ? `Automatic recovery is frozen: ${hosts.frozen}` : "Automatic recovery may act (not frozen)."),
      ),
      panel("Hosts not healthy",
        table(
          [
            { label: "Host", value: (v) => h("a", { href: `/ui/hosts/${encodeURIComponent(v.subject)}` }, v.subject) },
            { label: "State", value: (v) => badge(v.state) },
            { label: "Failure", value: (v) => v.failure || "-" },
            { label: "Why", value: (v) => v.reason },
            { label: "Since", value: (v) => when(v.changed_at) },
          ],
          hosts.items.filter((v) => v.state !== "healthy"),
          { caption: "Hosts not healthy", empty: "Every host with a verdict is healthy." },
        ),
      ),
    ),
    panel(`Recoveries (${list.items.length})`,
      table(
        [
          { label: "#", value: (r) => h("a", { href: `/ui/recoveries/${r.id}`, "aria-label": `Recovery ${r.id} of ${r.subject}` }, `#${r.id}`), num: true },
          { label: "Kind", value: (r) => r.kind },
          { label: "Subject", value: (r) => r.subject },
          { label: "Where", value: (r) => `${r.cloud}/${r.region}` },
          { label: "Trigger", value: (r) => r.trigger },
          { label: "Status", value: (r) => badge(r.status) },
          { label: "Mode", value: (r) => (r.execute ? "executed" : "dry-run") },
          { label: "Started", value: (r) => when(r.created_at) },
          { label: "Ended", value: (r) => when(r.finished_at) },
        ],
        list.items,
        { caption: "Recoveries", empty: "No recovery yet: nothing failed, or health and recovery are off." },
      ),
    ),
  );
}

async function renderOne(view, id) {
  const r = await readOr404(view, `/v1/recoveries/${encodeURIComponent(id)}`, `No recovery #${id}.`);
  if (!r) return;
  view.append(
    h("p", {}, h("a", { href: "/ui/recoveries" }, "← All recoveries")),
    h("h1", {}, `Recovery #${r.id}: ${r.kind} ${r.subject}`),
    h("div", { class: "grid" },
      panel("Outcome",
        h("dl", { class: "stats" },
          stat("Status", badge(r.status)),
          stat("Mode", r.execute ? "executed" : "dry-run"),
          stat("Where", `${r.cloud}/${r.region}`),
          stat("Trigger", r.trigger),
        ),
        h("p", {}, "Started ", when(r.created_at), " · ended ", when(r.finished_at)),
        r.error ? h("p", { class: "error", role: "alert" }, r.error) : null,
      ),
      panel("Evidence",
        r.evidence.length ? h("ul", {}, r.evidence.map((e) => h("li", {}, e))) : h("p", { class: "empty" }, "No evidence recorded."),
      ),
    ),
    panel(`Steps (${(r.steps || []).length})`,
      (r.steps || []).length
        ? h("ol", { class: "timeline", "aria-label": "Steps" }, r.steps.map(step))
        : h("p", { class: "empty" }, "No step started yet."),
    ),
  );
}

function step(s) {
  const found = Object.entries(s.details || {});
  return h("li", { dataset: { step: s.name } },
    h("strong", {}, `${s.seq}. ${s.name}`), ` ${s.target} `, badge(s.status),
    s.action_id ? h("span", { class: "muted" }, ` · action #${s.action_id}`) : null,
    h("div", { class: "muted" }, when(s.started_at), " → ", when(s.finished_at)),
    s.error ? h("p", { class: "error" }, s.error) : null,
    found.length
      ? h("dl", { class: "evidence" }, found.map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]))
      : null,
  );
}


function countBy(items, key) {
  const counts = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] || 0) + 1;
  return counts;
}

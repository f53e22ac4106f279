// Workloads: the groups of servers (or nodes, or containers) provisioning made, their
// members and how many are healthy (k of n: the health job's verdict when it has one,
// else the members ACTIVE in the newest pass).
import { api } from "../api.js";
import { badge, h, panel, table, when } from "../dom.js";

export const title = () => "Workloads";

const KIND = { nova: "servers", ironic: "bare-metal nodes", zun: "containers" };

export async function render(view) {
  const [page, health] = await Promise.all([
    api("/v1/workloads?limit=1000"),
    api("/v1/health/workloads").catch(() => ({ items: [] })),
  ]);
  const verdicts = new Map(health.items.map((v) => [v.subject, v]));
  view.append(
    h("h1", {}, "Workloads"),
    panel(`Workloads (${page.total})`,
      table(
        [
          { label: "Workload", value: (w) => h("strong", {}, w.name) },
          { label: "Project", value: (w) => w.project_id || "-" },
          { label: "Kind", value: (w) => KIND[w.backend] || w.backend },
          { label: "Backend", value: (w) => w.backend },
          { label: "Status", value: (w) => badge(w.status) },
          { label: "Healthy", value: (w) => healthy(w, verdicts.get(w.name)), num: true },
          { label: "Members", value: (w) => members(w) },
          { label: "Hosts", value: (w) => (w.hosts || []).join(", ") || "-" },
          { label: "Seen", value: (w) => when(w.last_seen) },
        ],
        page.items,
        { caption: "Workloads", empty: "No workload: none was provisioned (stackfleet provision apply)." },
      ),
    ),
  );
}

function healthy(w, verdict) {
  const details = (verdict && verdict.details) || {};
  const k = details.healthy ?? w.active_count;
  const n = typeof details.members === "number" ? details.members : w.member_count;
  return h("span", { "aria-label": `${k} of ${n} members healthy` }, `${k} of ${n}`, verdict ? [" ", badge(verdict.state)] : null);
}

function members(w) {
  const names = w.member_names || [];
  return h("ul", { class: "plain" }, names.map((name, i) => h("li", {}, name || (w.member_ids || [])[i])));
}

// Databases and RabbitMQ: the newest probe of each database server and broker, with
// their findings (written by the daemon's sweeps or `stackfleet db status` / `mq status`).
import { api } from "../api.js";
import { badge, h, panel, table, when } from "../dom.js";

export const title = () => "Databases & RabbitMQ";

export async function render(view) {
  const [databases, queues] = await Promise.all([api("/v1/databases"), api("/v1/queues")]);
  view.append(
    h("h1", {}, "Databases & RabbitMQ"),
    panel(`Database servers (${databases.databases.length})`,
      table(
        [
          { label: "Server", value: (d) => [d.server || d.resource_id, where(d)] },
          { label: "Up", value: (d) => (d.up ? badge("up") : [badge("down"), d.error ? ` ${d.error}` : ""]) },
          { label: "Version", value: (d) => d.version || "-" },
          { label: "Galera", value: (d) => (d.galera ? `${d.galera.local_state}, cluster of ${d.galera.cluster_size}` : "-") },
          { label: "Probed", value: (d) => when(d.probed_at) },
          { label: "Findings", value: (d) => findingList(d.findings) },
        ],
        databases.databases,
        { caption: "Database servers", empty: "No database server probed: give the daemon an infrastructure config (--infra-config)." },
      ),
    ),
    panel(`RabbitMQ clusters (${queues.brokers.length})`,
      table(
        [
          { label: "Cluster", value: (b) => [b.cluster_name || b.broker || b.resource_id, where(b)] },
          { label: "Up", value: (b) => (b.up ? badge("up") : [badge("down"), b.error ? ` ${b.error}` : ""]) },
          { label: "Nodes", value: (b) => count(b.nodes), num: true },
          { label: "Queues", value: (b) => queues.queues.filter((q) => String(q.resource_id).startsWith(`${b.resource_id}/`)).length, num: true },
          { label: "Probed", value: (b) => when(b.probed_at) },
        ],
        queues.brokers,
        { caption: "RabbitMQ clusters", empty: "No RabbitMQ cluster probed." },
      ),
      h("h3", {}, "Deepest queues"),
      table(
        [
          { label: "Queue", value: (q) => q.name },
          { label: "Role", value: (q) => q.role || "-" },
          { label: "Messages", value: (q) => q.messages ?? "-", num: true },
          { label: "Consumers", value: (q) => q.consumers ?? "-", num: true },
        ],
        [...queues.queues].sort((a, b) => (b.messages || 0) - (a.messages || 0)).slice(0, 20),
        { caption: "Deepest queues", empty: "No queue." },
      ),
      h("h3", {}, "Findings"),
      findingList(queues.findings),
    ),
  );
}

const where = (item) => (item.cloud ? ` (${item.cloud}/${item.region})` : "");
const count = (value) => (Array.isArray(value) ? value.length : value ?? "-");

function findingList(findings) {
  if (!findings || !findings.length) return h("span", { class: "muted" }, "none");
  return h("ul", {}, findings.map((f) => h("li", {}, badge(f.severity || "info", "sev"), ` ${f.rule || f.policy || ""}: ${f.message || ""}`)));
}

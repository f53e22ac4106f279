// Leases: resources in a reclamation lifecycle, when their next step is due, and
// extending a lease within its policy's cap (the API answers 409 past it).
import { api, post } from "../api.js";
import { badge, h, panel, table, when } from "../dom.js";

export const title = () => "Leases";

export async function render(view, _params, ctx) {
  const leases = await api("/v1/leases");
  view.append(
    h("h1", {}, "Leases"),
    panel(`Active leases (${leases.items.length})`,
      table(
        [
          { label: "Resource", value: (l) => `${l.kind} ${l.resource_name || l.resource_id}` },
          { label: "Project", value: (l) => l.project_id || "-" },
          { label: "Policy", value: (l) => l.policy },
          { label: "Stage", value: (l) => badge(l.stage) },
          { label: "Next step", value: (l) => when(l.next_at) },
          { label: "Extended", value: (l) => `${round(l.extended_days)} of ${round(l.max_extension_days)} days`, num: true },
          { label: "Extend", value: (l) => extendForm(l, ctx) },
        ],
        leases.items,
        { caption: "Active leases", empty: "No resource is in a lifecycle." },
      ),
    ),
  );
}

const round = (days) => Math.round(days * 10) / 10;

function extendForm(lease, ctx) {
  const left = Math.max(0, lease.max_extension_days - lease.extended_days);
  const id = `extend-${lease.id}`;
  const form = h("form", { class: "inline", "aria-label": `Extend the lease of ${lease.resource_name || lease.resource_id}` },
    h("div", {}, h("label", { for: id }, "Days"), h("input", { id, name: "days", type: "number", min: "0.01", step: "any", value: String(Math.min(7, round(left)) || 1), required: true })),
    h("button", { type: "submit", disabled: left <= 0 }, "Extend"),
    h("span", { class: "muted" }, `${round(left)} days left under the cap`),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const days = Number(new FormData(form).get("days"));
    try {
      await post(`/v1/leases/${encodeURIComponent(lease.resource_id)}/extend`, { days });
      ctx.notice(`Extended the lease of ${lease.resource_name || lease.resource_id} by ${days} days.`, "ok");
      await ctx.rerender();
    } catch (error) {
      ctx.notice(error.message, "error");
    }
  });
  return form;
}

// Actions and approvals: plans waiting for approval with their diffs (approve or
// reject: operators only, the API refuses anyone else), recent actions, and the audit
// log as a timeline with a check of its hash chain. Each plan says what approving it
// does here (`on_approval`): in the demo only the demo's own packs act at once.
import { api, post } from "../api.js";
import { badge, h, panel, table, when } from "../dom.js";

export const title = () => "Actions & approvals";

export async function render(view, _params, ctx) {
  const [pending, recent, audit] = await Promise.all([
    api("/v1/actions?status=awaiting-approval&limit=200"),
    api("/v1/actions?limit=50"),
    api("/v1/audit?limit=50"),
  ]);
  view.append(
    h("h1", {}, "Actions & approvals"),
    panel(`Waiting for approval (${pending.total})`,
      h("p", { class: "mode", "data-approval-runs": "" }, h("strong", {}, "What approval does: "), pending.approval_runs),
      ctx.canWrite ? null : h("p", { class: "muted" }, "Only an operator may approve or reject: sign in with an operator's token."),
      pending.items.length ? h("div", {}, pending.items.map((a) => pendingCard(a, ctx))) : h("p", { class: "empty" }, "Nothing waits for approval."),
    ),
    panel("Recent actions",
      table(
        [
          { label: "#", value: (a) => a.id, num: true },
          { label: "Policy", value: (a) => a.policy },
          { label: "Action", value: (a) => a.action },
          { label: "Resource", value: (a) => `${a.kind} ${a.resource_name || a.resource_id}` },
          { label: "Status", value: (a) => badge(a.status) },
          { label: "Updated", value: (a) => when(a.updated_at) },
        ],
        recent.items,
        { caption: "Recent actions", empty: "No action recorded yet (policies run as a dry-run by default)." },
      ),
    ),
    auditPanel(audit, ctx),
  );
}

function pendingCard(action, ctx) {
  const name = `action ${action.id} (${action.action} ${action.resource_name || action.resource_id})`;
  const decide = (verb) => async () => {
    try {
      const decided = await post(`/v1/actions/${action.id}/${verb}`);
      ctx.notice(verb === "approve" ? approvedNotice(name, decided) : `Rejected ${name}.`, "ok");
      await ctx.rerender();
    } catch (error) {
      ctx.notice(error.message, "error");
    }
  };
  const plan = action.plan || {};
  return h("article", { class: "panel", "aria-label": name, dataset: { action: action.id } },
    h("h3", {}, `#${action.id} ${plan.summary || action.action}`),
    h("p", { class: "muted" }, `${action.policy} · ${action.cloud}/${action.region} · ${action.kind} ${action.resource_name || action.resource_id}`, plan.destructive ? [" · ", badge("destructive", "sev-critical")] : null),
    diff(plan.diff || []),
    h("p", { class: "muted", dataset: { onApproval: action.on_approval } }, ON_APPROVAL[action.on_approval] || ON_APPROVAL["next-run"]),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: decide("approve"), "aria-label": `Approve ${name}` }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: decide("reject"), "aria-label": `Reject ${name}` }, "Reject"),
    ),
  );
}

const ON_APPROVAL = {
  "at-once": "Approving it carries it out at once.",
  "next-run": "Approving it lets it run at its policy's next run with --execute; nothing changes before.",
};

function approvedNotice(name, decided) {
  if (decided.status === "approved") return `Approved ${name}; it runs at its policy's next run with --execute.`;
  return `Approved ${name}: ${decided.status}${decided.error ? ` (${decided.error})` : ""}.`;
}

function diff(lines) {
  if (!lines.length) return h("p", { class: "muted" }, "No field changes (a notification or a mark).");
  return h("pre", { class: "diff", "aria-label": "Planned change" },
    lines.map((line) => h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : null }, line, "\n")));
}

function auditPanel(audit, ctx) {
  const result = h("p", { role: "status" });
  const verify = async () => {
    try {
      const check = await api("/v1/audit/verify");
      result.replaceChildren(
        check.ok ? badge("ok") : badge("fail"),
        ` ${check.entries} entries, head #${check.head_seq}`,
        check.problems.length ? `: ${check.problems.join("; ")}` : " — the hash chain is intact.",
      );
    } catch (error) {
      result.replaceChildren(h("span", { class: "error" }, error.message));
    }
  };
  return panel(`Audit log (${audit.total} entries)`,
    h("div", { class: "buttons" }, h("button", { type: "button", class: "secondary", onclick: verify }, "Verify the hash chain")),
    result,
    audit.items.length
      ? h("ol", { class: "timeline" }, audit.items.map((e) => h("li", {}, when(e.at), ` #${e.seq} `, h("strong", {}, e.event), ` by ${e.actor}`, e.target ? ` on ${e.target}` : "", e.policy ? ` (${e.policy})` : "")))
      : h("p", { class: "empty" }, "The audit log is empty."),
  );
}

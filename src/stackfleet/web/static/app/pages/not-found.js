// The 404 page: an unknown dashboard path, or a host the inventory does not know.
import { h } from "../dom.js";

export const title = () => "Not found";

export function notFoundView(view, what) {
  view.dataset.page = "not-found";
  view.append(
    h("h1", {}, "404 — not found"),
    h("p", { role: "alert" }, what),
    h("p", {}, h("a", { href: "/ui/" }, "Back to the overview")),
  );
}

export async function render(view, params) {
  notFoundView(view, `There is no dashboard page at ${params.path}.`);
}

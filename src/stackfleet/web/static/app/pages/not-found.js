// The 404 page: an unknown dashboard path, or a host the inventory does not know.
import { api } from "../api.js";
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

/** GET `path`; a 404 draws the 404 page saying `what` and resolves to null. */
export async function readOr404(view, path, what) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status !== 404) throw error;
    notFoundView(view, what);
    return null;
  }
}

export async function render(view, params) {
  notFoundView(view, `There is no dashboard page at ${params.path}.`);
}

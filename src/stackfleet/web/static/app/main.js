// The dashboard's shell: navigation, routing to page modules, the sign-in prompt and
// live updates (a cheap poll of the newest pass; a new pass re-renders the page).
import { api, getToken, setToken, whenUnauthorized } from "./api.js";
import { h } from "./dom.js";
import { NAV, match } from "./router.js";

const POLL_MS = Number(new URLSearchParams(location.search).get("poll_ms")) || 5000;
const state = { whoami: null, lastPass: undefined, rendering: null, route: null };

function notice(message, kind = "") {
  const box = document.getElementById("notice");
  if (!message) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.className = `notice ${kind}`;
  box.textContent = message;
  box.hidden = false;
}

// -- signing in -------------------------------------------------------------------
let loginWaiters = [];

function askForToken(reason) {
  const dialog = document.getElementById("login");
  document.getElementById("login-reason").textContent = reason || "";
  document.getElementById("login-error").textContent = "";
  document.getElementById("login-hint").textContent = state.whoami
    ? `Paste ${state.whoami.login_hint}.`
    : "Paste a Keystone token (openstack token issue -f value -c id) or the local operator token.";
  if (!dialog.open) dialog.showModal();
  document.getElementById("login-token").focus();
  return new Promise((resolve) => loginWaiters.push(resolve));
}

async function signIn(event) {
  event.preventDefault();
  const token = document.getElementById("login-token").value.trim();
  const errorBox = document.getElementById("login-error");
  if (!token) {
    errorBox.textContent = "Enter a token.";
    return;
  }
  try {
    const me = await api("/v1/whoami", { token, quiet: true });
    if (!me.authenticated) throw new Error("the API does not check tokens (authentication is off)");
    setToken(token);
    state.whoami = me;
    document.getElementById("login").close();
    document.getElementById("login-token").value = "";
    renderSession();
    notice(`Signed in as ${me.user} (${me.role}).`, "ok");
    const waiters = loginWaiters;
    loginWaiters = [];
    waiters.forEach((resolve) => resolve(true));
    render();
  } catch (error) {
    errorBox.textContent = error.status === 401 ? "That token is invalid or expired." : error.message;
  }
}

function signOut() {
  setToken(null);
  state.whoami = null;
  refreshWhoami().then(render);
}

function renderSession() {
  const box = document.getElementById("session");
  const me = state.whoami;
  box.replaceChildren();
  if (me && me.authenticated) {
    box.append(h("span", {}, `${me.user} · ${me.role}`), h("button", { type: "button", onclick: signOut }, "Sign out"));
  } else if (!me || me.auth !== "off") {
    box.append(h("button", { type: "button", onclick: () => askForToken("") }, "Sign in"));
  }
}

async function refreshWhoami() {
  try {
    state.whoami = await api("/v1/whoami", { quiet: true });
  } catch (error) {
    state.whoami = null;
    if (error.status === 401) {
      if (getToken()) setToken(null);
      askForToken(getTokenReason(error));
    }
  }
  renderSession();
}

function getTokenReason(error) {
  return error.message.includes("expired") || error.message.includes("invalid")
    ? "Your token is invalid or has expired: sign in again."
    : "This StackFleet needs a token to show anything: sign in.";
}

// -- pages --------------------------------------------------------------------------
function renderNav(active) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    ...NAV.map((item) =>
      h("a", { href: item.href, "aria-current": item.id === active ? "page" : null, "data-nav": item.id }, item.label),
    ),
    h("a", { href: "/docs" }, "API docs"),
  );
}

export async function render() {
  const route = match(location.pathname);
  state.route = route;
  renderNav(route.nav);
  const main = document.getElementById("main");
  const view = h("div", { "data-page": route.id, "aria-busy": "true" });
  const token = {};
  state.rendering = token;
  document.title = `${route.page.title(route.params)} · StackFleet`;
  try {
    await route.page.render(view, route.params, context());
    if (state.rendering !== token) return; // a newer render started meanwhile
    view.removeAttribute("aria-busy");
    main.replaceChildren(view);
    performance.mark("stackfleet:drawn"); // benchmarks/dashboard_overview.py reads it
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  } catch (error) {
    if (state.rendering !== token) return;
    main.replaceChildren(
      h("div", { "data-page": "error" },
        h("h1", {}, route.page.title(route.params)),
        h("p", { class: "error", role: "alert" }, error.message),
        error.status === 401 ? h("button", { type: "button", onclick: () => askForToken("") }, "Sign in") : null,
        error.status === 403 ? h("p", {}, "Your token does not allow this page. Sign in with another token.") : null,
      ),
    );
  }
}

function context() {
  return {
    whoami: state.whoami,
    canWrite: !state.whoami || state.whoami.can_write || state.whoami.auth === "off",
    notice,
    rerender: render,
    navigate,
    askForToken,
  };
}

export function navigate(href) {
  history.pushState({}, "", href);
  render().then(() => {
    window.scrollTo(0, 0);
    document.getElementById("main").focus({ preventScroll: true });
  });
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());

// -- live updates ---------------------------------------------------------------------
async function newestPass() {
  const passes = await api("/v1/passes?limit=1", { quiet: true });
  const newest = passes.passes[0];
  return newest ? `${newest.id}:${newest.status}:${newest.finished_at}` : "none";
}

async function poll() {
  try {
    const key = await newestPass();
    if (key !== state.lastPass && !document.querySelector("dialog[open]")) {
      state.lastPass = key;
      await render();
    }
  } catch {
    // a token that may not read passes, or a server restarting: the page stays as it is
  } finally {
    document.body.dataset.lastPass = state.lastPass ?? "";
    setTimeout(poll, POLL_MS);
  }
}

async function start() {
  document.getElementById("login-form").addEventListener("submit", signIn);
  document.getElementById("login-cancel").addEventListener("click", () => document.getElementById("login").close());
  whenUnauthorized((message) => askForToken(getTokenReason({ message })));
  // who is signed in, and the pass the first render shows (or an older one: then the
  // first poll renders again), asked together
  const [, last] = await Promise.all([refreshWhoami(), newestPass().catch(() => undefined)]);
  state.lastPass = last;
  await render();
  document.body.dataset.ready = "true";
  setTimeout(poll, POLL_MS);
}

start();

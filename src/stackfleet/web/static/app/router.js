// Which page module answers which /ui path. A new page is a new module and a line here.
import * as actions from "./pages/actions.js";
import * as campaigns from "./pages/campaigns.js";
import * as findings from "./pages/findings.js";
import * as host from "./pages/host.js";
import * as infrastructure from "./pages/infrastructure.js";
import * as leases from "./pages/leases.js";
import * as notFound from "./pages/not-found.js";
import * as overview from "./pages/overview.js";
import * as recoveries from "./pages/recoveries.js";
import * as workloads from "./pages/workloads.js";

const ROUTES = [
  { id: "overview", nav: "overview", pattern: /^\/ui\/?$/, page: overview },
  { id: "host", nav: "overview", pattern: /^\/ui\/hosts\/([^/]+)\/?$/, page: host, params: ["host"] },
  { id: "findings", nav: "findings", pattern: /^\/ui\/findings\/?$/, page: findings },
  { id: "actions", nav: "actions", pattern: /^\/ui\/actions\/?$/, page: actions },
  { id: "leases", nav: "leases", pattern: /^\/ui\/leases\/?$/, page: leases },
  { id: "infrastructure", nav: "infrastructure", pattern: /^\/ui\/infrastructure\/?$/, page: infrastructure },
  { id: "recoveries", nav: "recoveries", pattern: /^\/ui\/recoveries\/?$/, page: recoveries },
  { id: "recovery", nav: "recoveries", pattern: /^\/ui\/recoveries\/(\d+)\/?$/, page: recoveries, params: ["id"] },
  { id: "workloads", nav: "workloads", pattern: /^\/ui\/workloads\/?$/, page: workloads },
  { id: "campaigns", nav: "campaigns", pattern: /^\/ui\/campaigns\/?$/, page: campaigns },
  { id: "campaign", nav: "campaigns", pattern: /^\/ui\/campaigns\/([^/]+)\/?$/, page: campaigns, params: ["name"] },
];

export const NAV = [
  { id: "overview", href: "/ui/", label: "Overview" },
  { id: "findings", href: "/ui/findings", label: "Findings & alerts" },
  { id: "actions", href: "/ui/actions", label: "Actions & approvals" },
  { id: "leases", href: "/ui/leases", label: "Leases" },
  { id: "infrastructure", href: "/ui/infrastructure", label: "Databases & RabbitMQ" },
  { id: "recoveries", href: "/ui/recoveries", label: "Recoveries" },
  { id: "workloads", href: "/ui/workloads", label: "Workloads" },
  { id: "campaigns", href: "/ui/campaigns", label: "Campaigns" },
];

export function match(pathname) {
  for (const route of ROUTES) {
    const found = pathname.match(route.pattern);
    if (found) {
      const params = {};
      (route.params || []).forEach((name, i) => (params[name] = decodeURIComponent(found[i + 1])));
      return { ...route, params };
    }
  }
  return { id: "not-found", nav: null, page: notFound, params: { path: pathname } };
}

// The utilization heatmap: one tile per host in each of three maps (vCPU, RAM, disk),
// drawn on a canvas. A thousand hosts as DOM cells were 4,000 elements to build, style
// and lay out on every live update; a canvas is one element drawn in a few ms.
// Accessible without the pointer: the canvas takes focus, arrow keys move between hosts
// (Home/End, PageUp/PageDown), Enter opens the host, and the selected host's values are
// read out by a live status line. The full host list is also a table (opened on demand).
import { h, pct, table } from "./dom.js";

const GAP = 1;
// px per tile, gap included: big tiles for a small fleet, 11 px from 400 hosts on
const tileFor = (n) => (n <= 100 ? 20 : n <= 400 ? 14 : 11);
// light to dark blue, one per 10 % step (the same ramp as the former DOM cells)
const RAMP = ["#eff5fb", "#d2e3f4", "#b6d1ed", "#99bfe6", "#7cadde", "#609cd7", "#438ad0", "#3078c0", "#2966a3", "#225487", "#1b426a"];
const NONE = "#eef0f2";
const DOWN = "#a4161a";

export const MODES = {
  allocation: { label: "Allocation (Placement)", metrics: [["cpu", "vCPU"], ["ram", "RAM"], ["disk", "Disk"]] },
  use: { label: "Real use (usage samples)", metrics: [["cpu_util", "CPU"], ["memory_used_percent", "RAM"], [null, "Disk"]] },
};

export function colour(value) {
  if (value === null || value === undefined) return NONE;
  return RAMP[Math.round(Math.max(0, Math.min(100, value)) / 10)];
}

/**
 * The heatmap of `cols` (the overview's host_columns), ordered busiest first.
 * `mode`: "allocation" or "use"; `onMode(mode)` is told when the visitor switches.
 */
export function heatmap(cols, { mode = "allocation", onMode = () => {}, navigate }) {
  const n = cols.host.length;
  const TILE = tileFor(n);
  const order = [...Array(n).keys()].sort((a, b) => (cols.cpu[b] || 0) + (cols.ram[b] || 0) - ((cols.cpu[a] || 0) + (cols.ram[a] || 0)));
  const state = { mode, selected: -1 };
  const canvas = h("canvas", {
    class: "heatmap-canvas",
    tabindex: "0",
    role: "application",
    "aria-roledescription": "heatmap",
    "aria-describedby": "heatmap-help",
    dataset: { hosts: String(n) },
  });
  const status = h("p", { class: "heat-status", role: "status", "aria-live": "polite" }, "Point at or select a host (Tab here, then the arrow keys) to read its values.");
  const help = h("p", { id: "heatmap-help", class: "sr-only" }, `${n} hosts, busiest first. Arrow keys move between hosts, Enter opens the selected host.`);
  const heads = h("div", { class: "heat-heads", "aria-hidden": "true" });
  const useNote = h("p", { class: "muted" });

  const layout = () => {
    const width = Math.max(300, canvas.parentElement?.clientWidth || 900);
    const mapWidth = Math.floor((width - 2 * 16) / 3);
    const perRow = Math.max(1, Math.floor(mapWidth / TILE));
    const rows = Math.ceil(n / perRow) || 1;
    return { mapWidth, perRow, rows, width: 3 * mapWidth + 2 * 16, height: rows * TILE };
  };

  const draw = () => {
    const box = layout();
    const ratio = window.devicePixelRatio || 1;
    canvas.width = box.width * ratio;
    canvas.height = box.height * ratio;
    canvas.style.width = `${box.width}px`;
    canvas.style.height = `${box.height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    const metrics = MODES[state.mode].metrics;
    metrics.forEach(([key], m) => {
      const left = m * (box.mapWidth + 16);
      const values = key ? cols[key] : null;
      for (let i = 0; i < n; i += 1) {
        const host = order[i];
        const x = left + (i % box.perRow) * TILE;
        const y = Math.floor(i / box.perRow) * TILE;
        ctx.fillStyle = values ? colour(values[host]) : NONE;
        ctx.fillRect(x, y, TILE - GAP, TILE - GAP);
        if (cols.state[host] === "down") {
          ctx.strokeStyle = DOWN;
          ctx.lineWidth = 2;
          ctx.strokeRect(x + 1, y + 1, TILE - GAP - 2, TILE - GAP - 2);
        }
      }
    });
    if (state.selected >= 0) {
      const i = state.selected;
      for (let m = 0; m < 3; m += 1) {
        ctx.strokeStyle = "#b35c00";
        ctx.lineWidth = 2;
        ctx.strokeRect(m * (box.mapWidth + 16) + (i % box.perRow) * TILE - 1, Math.floor(i / box.perRow) * TILE - 1, TILE + 1, TILE + 1);
      }
    }
    heads.replaceChildren(...metrics.map(([, label]) => h("span", { style: `width:${box.mapWidth}px` }, label)));
    canvas.dataset.mode = state.mode;
    canvas.dataset.drawn = String(n * 3);
    canvas.setAttribute("aria-label", `Utilization heatmap, ${MODES[state.mode].label}: ${n} hosts`);
    const reported = cols.cpu_util.filter((v) => v !== null).length;
    useNote.textContent = state.mode === "use"
      ? `Real use from the newest usage samples: ${reported} of ${n} hosts report CPU and RAM use (grey: no sample); disk use is not measured per host.`
      : "Share of each host's vCPU, RAM and disk that Placement has allocated to instances.";
  };

  const describe = (i) => {
    const host = order[i];
    const values = MODES[state.mode].metrics.map(([key, label]) => `${label} ${key ? pct(cols[key][host]) : "not measured"}`);
    return `${cols.host[host]} (${cols.state[host]}${cols.enabled[host] === "disabled" ? ", disabled" : ""}, ${cols.region[host]} ${cols.zone[host] || "no zone"}): ${values.join(", ")}`;
  };

  const select = (i) => {
    if (!n) return;
    state.selected = Math.max(0, Math.min(n - 1, i));
    status.textContent = describe(state.selected);
    canvas.dataset.selected = cols.host[order[state.selected]];
    draw();
  };

  const hit = (event) => {
    const box = layout();
    const rect = canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const m = Math.floor(x / (box.mapWidth + 16));
    const within = x - m * (box.mapWidth + 16);
    const col = Math.floor(within / TILE);
    if (m > 2 || col >= box.perRow) return -1;
    const i = Math.floor(y / TILE) * box.perRow + col;
    return i < n ? i : -1;
  };

  const open = (i) => navigate(`/ui/hosts/${encodeURIComponent(cols.host[order[i]])}`);

  canvas.addEventListener("mousemove", (event) => {
    const i = hit(event);
    canvas.style.cursor = i >= 0 ? "pointer" : "default";
    if (i >= 0) status.textContent = describe(i);
  });
  canvas.addEventListener("click", (event) => {
    const i = hit(event);
    if (i >= 0) open(i);
  });
  canvas.addEventListener("focus", () => state.selected < 0 && select(0));
  canvas.addEventListener("keydown", (event) => {
    const { perRow } = layout();
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow, PageDown: perRow * 5, PageUp: -perRow * 5 };
    if (event.key in moves) select(state.selected + moves[event.key]);
    else if (event.key === "Home") select(0);
    else if (event.key === "End") select(n - 1);
    else if (event.key === "Enter" && state.selected >= 0) open(state.selected);
    else return;
    event.preventDefault();
  });

  const toggle = h("fieldset", { class: "toggle" },
    h("legend", {}, "Show"),
    Object.entries(MODES).map(([value, spec]) => h("label", {},
      h("input", {
        type: "radio",
        name: "heat-mode",
        value,
        checked: value === state.mode,
        onchange: () => {
          state.mode = value;
          if (state.selected >= 0) status.textContent = describe(state.selected);
          draw();
          onMode(value);
        },
      }), ` ${spec.label}`)),
  );

  const hostTable = h("details", { class: "hosts-table" },
    h("summary", {}, `All ${n} hosts as a table`));
  hostTable.addEventListener("toggle", () => {
    if (!hostTable.open || hostTable.querySelector("table")) return;
    const rows = order.map((i) => i);
    hostTable.append(table(
      [
        { label: "Host", value: (i) => h("a", { href: `/ui/hosts/${encodeURIComponent(cols.host[i])}` }, cols.host[i]) },
        { label: "State", value: (i) => cols.state[i] },
        { label: "vCPU alloc.", value: (i) => pct(cols.cpu[i]), num: true },
        { label: "RAM alloc.", value: (i) => pct(cols.ram[i]), num: true },
        { label: "Disk alloc.", value: (i) => pct(cols.disk[i]), num: true },
        { label: "CPU use", value: (i) => pct(cols.cpu_util[i]), num: true },
        { label: "RAM use", value: (i) => pct(cols.memory_used_percent[i]), num: true },
      ],
      rows,
      { caption: "Hosts, busiest first" },
    ));
  });

  const wrap = h("div", { class: "heatmap-wrap" }, heads, canvas);
  const section = h("section", { class: "panel wide", "aria-labelledby": "p-heatmap" },
    h("h2", { id: "p-heatmap" }, "Utilization heatmap"),
    toggle,
    useNote,
    h("div", { class: "legend", "aria-hidden": "true" }, "0 %", [0, 20, 40, 60, 80, 100].map((v) => h("span", { class: "swatch", style: `background:${colour(v)}` })), "100 %",
      h("span", { class: "swatch", style: `background:${NONE}` }), "no data",
      h("span", { class: "swatch", style: `border:2px solid ${DOWN}` }), "host down"),
    n ? [help, wrap, status, hostTable] : h("p", { class: "empty" }, "No hypervisors collected yet."),
  );
  // drawn once the section is in the page (its width decides the tiles per row)
  if (n) requestAnimationFrame(draw);
  return section;
}

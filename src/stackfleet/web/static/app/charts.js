// Charts with uPlot (bundled from npm into /ui/static/vendor/uplot). Loaded on first
// use, so a page without charts never waits for it, and a missing bundle costs the
// charts only (with a message), not the page.
import { h } from "./dom.js";

let loading = null;

function uPlotModule() {
  loading ??= import("/ui/static/vendor/uplot/uPlot.esm.js").then((m) => m.default);
  return loading;
}

const COLOURS = ["#1f4e79", "#a4161a", "#1e6b34", "#8a5a00", "#5b3a8c", "#00676b"];

/**
 * A line chart of one or more series sharing their x values (Unix seconds).
 * series: [{label, values}], x: [ts...]. Returns the element at once; draws when loaded.
 */
export function lineChart({ title, x, series, unit = "", height = 180 }) {
  const box = h("figure", { class: "chart", role: "img", "aria-label": `${title}: chart of ${series.map((s) => s.label).join(", ")}` });
  box.append(h("figcaption", {}, title));
  if (!x.length) {
    box.append(h("p", { class: "empty" }, "No samples in this window."));
    return box;
  }
  uPlotModule()
    .then((uPlot) => {
      const width = Math.max(280, Math.min(box.clientWidth || 600, 900));
      const options = {
        width,
        height,
        series: [
          {},
          ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: x.length < 3 } })),
        ],
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => `${v}${unit}`) }],
      };
      // eslint-disable-next-line no-new
      new uPlot(options, [x, ...series.map((s) => s.values)], box);
    })
    .catch((error) => {
      box.append(h("p", { class: "error" }, `Charts are unavailable: ${error.message} (were the bundled assets built? web/build-assets)`));
    });
  return box;
}

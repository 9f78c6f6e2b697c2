// Line charts of values over time, drawn as SVG: no library, nothing fetched from elsewhere.
//
// lineChart(el, {times, lines: [{label, values, colour?}], unit, start, end}) draws into el
// (replacing what it held): a y axis from 0 (or the lowest value, if negative) to a round
// number above the highest, time along x from start to end (ms; the data's own span when
// not given), one path per line (broken where a value is null), a legend with each
// line's latest value, and on hover the values at that time.

import { h } from "./dom.js";
import * as fmt from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 190;
const PAD = { top: 10, right: 12, bottom: 22, left: 64 };
const PALETTE = ["#3b7cf0", "#2fa866", "#f97316", "#a855f7", "#e5484d", "#0ea5e9",
  "#f0b429", "#14b8a6", "#ec4899", "#64748b"];

/** How a value of a unit reads: "percent", "bytes", "bytes/s", "per s" or a plain number. */
export function formatValue(value, unit) {
  if (value === null || value === undefined) return "–";
  switch (unit) {
    case "percent": return `${value.toFixed(value < 10 ? 1 : 0)} %`;
    case "bytes": return fmt.bytes(value);
    case "bytes/s": return `${fmt.bytes(value)}/s`;
    case "per s": return `${compact(value)}/s`;
    default: return compact(value);
  }
}

function compact(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${+(value / 1e9).toFixed(2)}G`;
  if (abs >= 1e6) return `${+(value / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  return fmt.number(+value.toPrecision(4));
}

/** A round number at or above x whose quarters are round too: 1, 2, 4, 6 or 8 times a
 * power of ten, times a power of the unit's base. */
function roundUp(x, unit) {
  const base = unit === "bytes" || unit === "bytes/s" ? 1024 : 1000;
  if (x <= 0) return base === 1024 ? 1024 : 1; // all zero: 0 to 1 KiB, or 0 to 1
  const scale = base ** Math.floor(Math.log(x) / Math.log(base));
  const scaled = x / scale;
  const power = 10 ** Math.floor(Math.log10(scaled));
  const step = [1, 2, 4, 6, 8, 10].find((m) => m * power >= scaled);
  return step * power * scale;
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  return el;
}

/** The path of one line: a move at each point after a gap, a line to the others. */
function pathOf(values, x, y) {
  let d = "";
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null) {
      drawing = false;
      return;
    }
    d += `${drawing ? "L" : "M"}${x(i).toFixed(1)},${y(value).toFixed(1)}`;
    drawing = true;
  });
  return d;
}

export function lineChart(el, { times, lines, unit, start, end }) {
  el.replaceChildren();
  el.classList.add("chart");
  const width = Math.max(280, el.clientWidth || 520);
  const all = lines.flatMap((line) => line.values.filter((v) => v !== null));
  if (!times.length || !all.length) {
    el.append(h("div", { class: "chart-empty" }, "No data in this range yet."));
    return;
  }
  const top = roundUp(Math.max(...all), unit);
  const low = Math.min(0, ...all);
  const bottom = low < 0 ? -roundUp(-low, unit) : 0;
  const first = start ?? times[0];
  const span = Math.max(1, (end ?? times[times.length - 1]) - first);
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + ((times[i] - first) / span) * plotW;
  const y = (v) => PAD.top + (1 - (v - bottom) / (top - bottom)) * plotH;

  const chart = svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img" });
  for (let k = 0; k <= 4; k++) {
    const value = bottom + ((top - bottom) * k) / 4;
    const at = y(value);
    chart.append(svg("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: at, y2: at }));
    const label = svg("text", { class: "axis", x: PAD.left - 6, y: at + 4, "text-anchor": "end" });
    label.textContent = formatValue(value, unit);
    chart.append(label);
  }
  for (let k = 0; k <= 3; k++) {
    const label = svg("text", { class: "axis", x: PAD.left + (plotW * k) / 3, y: HEIGHT - 6,
      "text-anchor": k === 0 ? "start" : k === 3 ? "end" : "middle" });
    const clock = fmt.clock(first + (span * k) / 3);
    label.textContent = span > 10 * 60 * 1000 ? clock.slice(0, 5) : clock;
    chart.append(label);
  }
  const coloured = lines.map((line, i) => ({ ...line, colour: line.colour || PALETTE[i % PALETTE.length] }));
  for (const line of coloured) {
    chart.append(svg("path", { class: "line", d: pathOf(line.values, x, y), stroke: line.colour,
      "data-label": line.label }));
  }
  const rule = svg("line", { class: "rule", y1: PAD.top, y2: PAD.top + plotH, visibility: "hidden" });
  chart.append(rule);
  const tip = h("div", { class: "chart-tip", hidden: true });
  chart.addEventListener("mousemove", (event) => {
    const box = chart.getBoundingClientRect();
    const at = first + ((event.clientX - box.left - PAD.left) / plotW) * span;
    let i = 0;
    while (i < times.length - 1 && Math.abs(times[i + 1] - at) < Math.abs(times[i] - at)) i++;
    rule.setAttribute("x1", x(i));
    rule.setAttribute("x2", x(i));
    rule.setAttribute("visibility", "visible");
    tip.replaceChildren(h("div", { class: "muted" }, fmt.clock(times[i])),
      coloured.map((line) => h("div", null, h("span", { class: "swatch" }), ` ${line.label}: `,
        h("strong", null, formatValue(line.values[i], unit)))));
    tip.querySelectorAll(".swatch").forEach((s, k) => { s.style.background = coloured[k].colour; });
    tip.hidden = false;
    const left = x(i) + 12;
    tip.style.left = `${left + 220 > width ? x(i) - 232 : left}px`;
  });
  chart.addEventListener("mouseleave", () => {
    rule.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
  const legend = h("div", { class: "legend" }, coloured.map((line) => {
    const latest = [...line.values].reverse().find((v) => v !== null);
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = line.colour;
    return h("span", null, swatch, `${line.label} `,
      h("strong", null, formatValue(latest === undefined ? null : latest, unit)));
  }));
  el.append(chart, tip, legend);
}

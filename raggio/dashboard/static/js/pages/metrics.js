// Metrics: the cluster over time, from the dashboard's own history of every node's metrics
// (scraped every 5 s, an hour kept): CPU, memory, object store, network, tasks and actors
// by state, for the cluster or per node; and any application metric, split by a tag.

import { ApiError, getJSON, query } from "../api.js";
import { lineChart } from "../chart.js";
import { card, chips, colourOf, emptyState, fill, h, pageHead } from "../dom.js";
import * as fmt from "../format.js";

const RANGES = [["300", "5 min"], ["900", "15 min"], ["3600", "1 hour"]];
const VIEWS = [["cluster", "Cluster"], ["node", "By node"]];

/** The charts of the cluster: each draws one or more metrics (`lines`); `split` fixed
 * (by state) or per the view; `rate`: a cumulative gauge drawn per second; `cluster`:
 * drawn in the cluster view only (a total beside what is used). */
const CHARTS = [
  { id: "cpu", title: "CPU utilization", unit: "percent",
    lines: [{ name: "ray_node_cpu_utilization", label: "CPU" }] },
  { id: "memory", title: "Memory", unit: "bytes",
    lines: [{ name: "ray_node_mem_used", label: "used" },
      { name: "ray_node_mem_total", label: "total", cluster: true }] },
  { id: "object-store", title: "Object store", unit: "bytes",
    lines: [{ name: "ray_object_store_used_memory", label: "used" },
      { name: "raggio_object_store_capacity_bytes", label: "capacity", cluster: true },
      { name: "ray_spill_manager_objects_bytes", label: "spilled" }] },
  { id: "network", title: "Network", unit: "bytes/s",
    lines: [{ name: "ray_node_network_sent", label: "sent", rate: true },
      { name: "ray_node_network_received", label: "received", rate: true }] },
  { id: "tasks", title: "Tasks by state", unit: "count",
    lines: [{ name: "ray_tasks", split: "State" }] },
  { id: "actors", title: "Actors by state", unit: "count",
    lines: [{ name: "ray_actors", split: "State" }] },
];

/** Hex colours of the state colours (dom.js's names), so a state looks the same here. */
const STATE_HEX = { green: "#2fa866", blue: "#3b7cf0", amber: "#f0b429", orange: "#f97316",
  red: "#e5484d", grey: "#9aa3b2" };

/** The lines of one query's answer, labelled for a chart of several metrics. */
function linesOf(answer, spec, chart, view) {
  return answer.series.map((s) => {
    const many = chart.lines.length > 1;
    const label = spec.split ? s.label
      : many && view === "node" ? `${spec.label} · ${s.label}` : many ? spec.label : s.label;
    return { label, values: s.values,
      colour: spec.split === "State" ? STATE_HEX[colourOf(s.key)] : undefined };
  });
}

/** An answer's data, or null for a metric the history no longer holds (its series went
 * between the list and the query). */
async function ask(url, signal) {
  try {
    return await getJSON(url, { signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** The unit an application metric is drawn in. */
function unitOf(metric, stat) {
  if (metric.type === "counter" || ((metric.type === "histogram" || metric.type === "summary")
    && stat === "rate")) return "per s";
  return "";
}

export function page({ root, query: params, setQuery }) {
  const toolbar = h("div", { class: "toolbar" });
  const status = h("p", { class: "muted metrics-status" });
  const grid = h("div", { class: "grid cols-2" });
  const charts = new Map(CHARTS.map((c) => [c.id, h("div", { dataset: { chart: c.id } })]));
  for (const c of CHARTS) grid.append(card(c.title, charts.get(c.id)));
  const appControls = h("div", { class: "toolbar" });
  const appChart = h("div", { dataset: { chart: "application" } });
  const appCard = card("Application metrics", appControls, appChart);
  root.append(pageHead("Metrics", "Every node's metrics, scraped by the dashboard every 5 s; " +
    "it keeps the last hour."), toolbar, status, grid, appCard);

  async function refresh(signal) {
    const range = params.get("range") || "900";
    const view = params.get("view") || "cluster";
    fill(toolbar,
      chips(RANGES.map(([value, label]) => ({ value, label })), range,
        (value) => setQuery({ range: value })),
      chips(VIEWS.map(([value, label]) => ({ value, label })), view,
        (value) => setQuery({ view: value })));
    const list = await getJSON("/api/ui/metrics", { signal });
    const held = new Set(list.metrics.map((m) => m.name)); // no actors yet: no ray_actors
    const requests = CHARTS.map((c) => Promise.all(c.lines
      .filter((spec) => held.has(spec.name) && (view === "cluster" || !spec.cluster))
      .map(async (spec) => {
        const answer = await ask(`/api/ui/metrics/query${query({ name: spec.name, range,
          split: spec.split || (view === "node" ? "node" : ""), rate: spec.rate ? "true" : "" })}`,
        signal);
        return answer && { answer, spec };
      })));
    const app = appQuery(list, range, signal);
    const answers = await Promise.all([...requests, app.request]);
    // The dashboard's clock, not the browser's, which may be another machine's.
    const span = { start: list.now_ms - Number(range) * 1000, end: list.now_ms };
    CHARTS.forEach((c, i) => {
      const found = answers[i].filter(Boolean);
      const el = charts.get(c.id);
      if (!found.length) {
        fill(el, h("div", { class: "chart-empty" }, `No ${c.lines[0].name} in the history yet.`));
        return;
      }
      lineChart(el, { ...span, times: found[0].answer.times, unit: c.unit,
        lines: found.flatMap(({ answer, spec }) => linesOf(answer, spec, c, view)) });
    });
    app.draw(answers[answers.length - 1], span);
    showStatus(list);
  }

  let shownControls = "";

  /** The application metrics' controls, and the request and drawing of the one picked. */
  function appQuery(list, range, signal) {
    const metrics = list.metrics.filter((m) => m.application);
    if (!metrics.length) {
      shownControls = "";
      fill(appControls);
      fill(appChart, emptyState("No application metrics yet",
        "Metrics that tasks, actors and drivers record with `raggio.util.metrics` (Ray's " +
        "`ray.util.metrics`) show here, each split by any of its tags:",
        "from ray.util.metrics import Counter\n\nrequests = Counter(\"requests\", " +
        "description=\"Requests served.\", tag_keys=(\"route\",))\nrequests.inc(tags=" +
        "{\"route\": \"/predict\"})"));
      return { request: null, draw: () => {} };
    }
    const wanted = params.get("metric");
    const metric = metrics.find((m) => m.name === wanted) || metrics[0];
    const splits = ["", "node", ...metric.label_keys];
    const split = splits.includes(params.get("split")) ? params.get("split") : "";
    const distribution = metric.type === "histogram" || metric.type === "summary";
    const stat = params.get("stat") === "rate" ? "rate" : "mean";
    // Drawn again only when they change: a list open in the browser stays open while the
    // page refreshes.
    const controls = JSON.stringify([metrics.map((m) => m.name), metric.name, splits, split, stat]);
    if (controls !== shownControls) {
      shownControls = controls;
      fill(appControls, appControlsOf(metrics, metric, splits, split, distribution, stat));
    }
    return {
      request: getJSON(`/api/ui/metrics/query${query({ name: metric.name, range, split,
        stat: distribution ? stat : "" })}`, { signal }),
      draw(answer, span) {
        lineChart(appChart, { ...span, times: answer.times, unit: unitOf(metric, stat),
          lines: answer.series.map((s) => ({ label: s.label, values: s.values })) });
        if (answer.omitted) {
          appChart.append(h("p", { class: "muted" },
            `${fmt.plural(answer.omitted, "line")} with smaller values not drawn.`));
        }
      },
    };
  }

  function appControlsOf(metrics, metric, splits, split, distribution, stat) {
    const select = h("select", { id: "app-metric", "aria-label": "Metric",
      onchange: (event) => setQuery({ metric: event.target.value, split: null, stat: null }) },
    metrics.map((m) => h("option", { value: m.name, selected: m.name === metric.name },
      `${m.name} (${m.type})`)));
    const splitSelect = h("select", { id: "app-split", "aria-label": "Split by",
      onchange: (event) => setQuery({ split: event.target.value }) },
    splits.map((key) => h("option", { value: key, selected: key === split },
      key === "" ? "nothing (the cluster)" : key === "node" ? "node" : `tag ${key}`)));
    return [h("label", null, "Metric ", select), h("label", null, "Split by ", splitSelect),
      distribution ? chips([{ value: "mean", label: "mean value" },
        { value: "rate", label: "observations/s" }], stat, (value) => setQuery({ stat: value }))
        : null,
      metric.help ? h("span", { class: "muted" }, metric.help) : null];
  }

  function showStatus(list) {
    const alive = list.nodes.filter((n) => n.alive);
    const failing = alive.filter((n) => n.error);
    fill(status,
      `${fmt.plural(alive.length, "live node")}, ${fmt.number(list.series)} series kept ` +
      `(at most ${fmt.number(list.max_series)}, ${fmt.bytes(list.memory_bytes)})` +
      (list.dropped_series ? `; ${fmt.number(list.dropped_series)} series dropped at the cap` : "") +
      (list.last_round_ms ? `; last scrape ${fmt.clock(list.last_round_ms)}.` : "; the first scrape is on its way."),
      failing.map((n) => h("span", { class: "error-text" }, ` ${n.node_ip}: ${n.error}.`)));
  }

  return { title: "Metrics", topics: ["metrics"], refresh };
}

// The dashboard's shell: the sidebar, the routes (#/actors/<id>, as Ray's dashboard spells
// them), the banner, and when the current page fetches again.
//
// A page is a function (ctx) -> {title, topics, refresh(signal), dispose?}: it builds its
// controls in ctx.root once and redraws its data on refresh(). The shell refreshes it
// when the live stream says one of its topics changed (at most once a second, never two
// at a time), when the cluster answers again after the banner, and every FALLBACK_MS.

import { ApiError, health } from "./api.js";
import { h } from "./dom.js";
import * as live from "./live.js";
import * as actors from "./pages/actors.js";
import * as cluster from "./pages/cluster.js";
import * as jobs from "./pages/jobs.js";
import * as logs from "./pages/logs.js";
import * as metrics from "./pages/metrics.js";
import * as nodes from "./pages/nodes.js";
import * as overview from "./pages/overview.js";
import * as tasks from "./pages/tasks.js";

const MIN_GAP_MS = 1000;
const FALLBACK_MS = 15000;

const ICONS = {
  overview: "M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z",
  jobs: "M4 7h16v12H4zM9 7V4h6v3",
  actors: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
  tasks: "M9 6h11M9 12h11M9 18h11M4 6h.01M4 12h.01M4 18h.01",
  nodes: "M4 4h16v6H4zM4 14h16v6H4zM8 7h.01M8 17h.01",
  logs: "M6 3h9l4 4v14H6zM9 12h7M9 16h7M9 8h3",
  cluster: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM12 12l8-4.5M12 12v9M12 12L4 7.5",
  metrics: "M4 19V5M4 19h16M8 15l4-5 3 3 5-7",
};

const NAV = [
  ["overview", "Overview"], ["jobs", "Jobs"], ["actors", "Actors"], ["tasks", "Tasks"],
  ["nodes", "Nodes"], ["logs", "Logs"], ["cluster", "Cluster"], ["metrics", "Metrics"],
];

/** [pattern over the hash's path, nav item, page]. */
const ROUTES = [
  [/^\/?$/, "overview", overview.page],
  [/^\/overview$/, "overview", overview.page],
  [/^\/jobs$/, "jobs", jobs.list],
  [/^\/jobs\/([^/]+)$/, "jobs", jobs.detail],
  [/^\/actors$/, "actors", actors.list],
  [/^\/actors\/([0-9a-f]+)$/, "actors", actors.detail],
  [/^\/tasks$/, "tasks", tasks.list],
  [/^\/tasks\/([0-9a-f]+)$/, "tasks", tasks.detail],
  [/^\/nodes$/, "nodes", nodes.list],
  [/^\/nodes\/([0-9a-f]+)$/, "nodes", nodes.detail],
  [/^\/logs$/, "logs", logs.page],
  [/^\/cluster$/, "cluster", cluster.page],
  [/^\/metrics$/, "metrics", metrics.page],
];

function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "");
  const [path, search] = hash.split("?");
  return { path: path || "/", query: new URLSearchParams(search || "") };
}

const state = {
  page: null, // the current page's controller
  abort: null,
  inFlight: false,
  again: false,
  lastStart: 0,
  timer: null,
  fallback: null,
};

function scheduleRefresh() {
  if (!state.page) return;
  if (state.inFlight) {
    state.again = true;
    return;
  }
  if (state.timer) return;
  const wait = Math.max(0, state.lastStart + MIN_GAP_MS - Date.now());
  state.timer = setTimeout(runRefresh, wait);
}

async function runRefresh() {
  state.timer = null;
  const page = state.page;
  if (!page) return;
  state.inFlight = true;
  state.lastStart = Date.now();
  try {
    await page.refresh(state.abort.signal);
    page.failed?.remove();
    page.failed = null;
  } catch (error) {
    if (error.name !== "AbortError" && page === state.page) showFailure(page, error);
  } finally {
    state.inFlight = false;
    if (state.again) {
      state.again = false;
      scheduleRefresh();
    }
  }
}

/** A page whose data could not be read says why (the banner covers an unreachable cluster). */
function showFailure(page, error) {
  if (error instanceof ApiError && (error.status === 503 || error.status === 0)) return;
  if (error instanceof ApiError && error.status === 401) return;
  const message = error instanceof ApiError ? error.message : `This page failed: ${error}`;
  if (!page.failed) {
    page.failed = h("div", { class: "failed", role: "alert" });
    document.getElementById("page").prepend(page.failed);
  }
  page.failed.textContent = message;
  if (!(error instanceof ApiError)) console.warn(error);
}

function route() {
  const { path, query } = parseHash();
  state.abort?.abort();
  state.page?.dispose?.();
  state.page = null;
  clearTimeout(state.timer);
  state.timer = null;
  const root = document.getElementById("page");
  root.replaceChildren();
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", found && link.dataset.nav === found[1]);
  }
  if (!found) {
    root.append(h("div", { class: "empty" }, h("h3", null, "No such page"),
      h("p", null, `Nothing lives at #${path}. `, h("a", { href: "#/overview" }, "Go to the overview"), ".")));
    document.title = "raggio dashboard";
    return;
  }
  const [pattern, , makePage] = found;
  const params = path.match(pattern).slice(1).map(decodeURIComponent);
  state.abort = new AbortController();
  const ctx = {
    root, params, query,
    /** Change the page's query (filters, page) without a new history entry. */
    setQuery(changes) {
      for (const [key, value] of Object.entries(changes)) {
        if (value === null || value === undefined || value === "") query.delete(key);
        else query.set(key, value);
      }
      const text = query.toString();
      history.replaceState(null, "", `#${path}${text ? `?${text}` : ""}`);
      state.lastStart = 0;
      scheduleRefresh();
    },
  };
  state.page = makePage(ctx);
  document.title = `${state.page.title} · raggio dashboard`;
  state.lastStart = 0;
  scheduleRefresh();
  root.focus({ preventScroll: true });
}

function showBanner() {
  const banner = document.getElementById("banner");
  const down = !health.dashboardUp || !health.storeUp;
  banner.hidden = !down;
  if (down) {
    banner.replaceChildren(h("strong", null, health.dashboardUp
      ? "The cluster's control store does not answer. " : "The dashboard does not answer. "),
    health.message || "");
  }
}

function buildNav() {
  document.getElementById("nav").replaceChildren(...NAV.map(([name, label]) =>
    h("a", { href: `#/${name}`, dataset: { nav: name } }, icon(name), label)));
}

function start() {
  buildNav();
  const liveDot = document.getElementById("live");
  live.connect((connected) => {
    liveDot.textContent = connected ? "Live" : "Reconnecting…";
    liveDot.className = `live ${connected ? "on" : "off"}`;
  });
  live.onChange((topics) => {
    if (state.page && state.page.topics.some((t) => topics.includes(t))) scheduleRefresh();
  });
  health.subscribe(({ recovered }) => {
    showBanner();
    if (recovered) scheduleRefresh();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    location.assign("/login");
  });
  state.fallback = setInterval(() => {
    if (document.visibilityState === "visible") scheduleRefresh();
  }, FALLBACK_MS);
  window.addEventListener("hashchange", route);
  if (!location.hash) history.replaceState(null, "", "#/overview");
  route();
}

start();

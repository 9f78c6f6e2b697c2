// Logs: any live node's log files; the chosen one's end, followed as it grows.
//
// The page refreshes on every change of the nodes (their usage changes about once a second
// on a busy cluster), but a node's file list is fetched again only when the live nodes
// change, another node is picked, or "Refresh list" is pressed: a node with 1,000 actors
// has 2,000+ files. Each group shows its first MAX_SHOWN files (as the Nodes page does)
// until "Show all"; the filter searches every file.

import { getJSON, getRayList, query } from "../api.js";
import { card, emptyState, fill, h, pageHead } from "../dom.js";
import { logView } from "../logview.js";

const GROUP_TITLES = { worker_out: "Worker stdout", worker_err: "Worker stderr",
  raggio: "raggio", other: "Other" };
const MAX_SHOWN = 200;

export function page({ root, query: q, setQuery }) {
  const nodeSelect = h("select", { "aria-label": "Node" });
  const filter = h("input", { type: "search", placeholder: "Filter files", "aria-label": "Filter files" });
  const reload = h("button", { class: "button", type: "button",
    title: "Read the node's list of log files again" }, "Refresh list");
  const fileList = h("div", { class: "file-list" }, h("p", { class: "muted" }, "Loading…"));
  const viewer = logView({
    empty: "Pick a log file on the left.",
    source: () => {
      const nodeId = q.get("node_id");
      const target = q.get("file") ? { filename: q.get("file") } : q.get("pid")
        ? { pid: q.get("pid") } : null;
      if (!nodeId || !target) return null;
      const base = { node_id: nodeId, ...target };
      return {
        url: `/api/v0/logs/file${query({ ...base, lines: 1000 })}`,
        streamUrl: `/api/v0/logs/stream${query({ ...base, lines: 1000 })}`,
        download: `/api/v0/logs/file${query({ ...base, lines: -1 })}`,
      };
    },
  });
  root.append(pageHead("Logs", "Every live node's log directory: worker output and raggio's own logs."),
    h("div", { class: "logs-layout" },
      card(null, h("div", { class: "toolbar" }, nodeSelect, filter, reload), fileList),
      card(null, viewer.element)));
  let groups = {};
  let aliveShown = null; // the live nodes' ids in the node menu, joined
  let listed = null; // what the file list was fetched for: the live nodes and the node picked
  let listedNode = null;
  const whole = new Set(); // the groups of listedNode shown whole ("Show all")

  function title() {
    return q.get("file") || (q.get("pid") ? `output of pid ${q.get("pid")}` : "");
  }

  function fileLink(f) {
    return h("a", {
      href: `#/logs${query({ node_id: q.get("node_id"), file: f })}`,
      class: f === q.get("file") ? "active" : null, title: f,
      onclick: (event) => {
        event.preventDefault();
        setQuery({ file: f, pid: null });
        drawFiles();
        viewer.show(f);
      },
    }, f);
  }

  function drawFiles() {
    const wanted = filter.value.trim().toLowerCase();
    const sections = Object.entries(groups).map(([group, files]) => {
      const shown = files.filter((f) => f.toLowerCase().includes(wanted));
      if (!shown.length) return null;
      const capped = !whole.has(group) && shown.length > MAX_SHOWN;
      return [h("h3", null, `${GROUP_TITLES[group] || group} (${shown.length})`),
        (capped ? shown.slice(0, MAX_SHOWN) : shown).map(fileLink),
        capped ? h("button", { class: "button", type: "button",
          onclick: () => { whole.add(group); drawFiles(); } },
        `Show all ${shown.length} (${shown.length - MAX_SHOWN} more)`) : null];
    }).filter(Boolean);
    fill(fileList, ...(sections.length ? sections.flat(2)
      : [h("p", { class: "muted" }, wanted ? "No file matches." : "No log files on this node.")]));
  }

  filter.addEventListener("input", drawFiles);
  nodeSelect.addEventListener("change", () => {
    setQuery({ node_id: nodeSelect.value, file: null, pid: null });
    viewer.show("");
  });
  reload.addEventListener("click", () => {
    listed = null;
    setQuery({}); // nothing changes but the list: setQuery refreshes the page now
  });

  let viewerShown = false;
  async function refresh(signal) {
    const { nodes } = await getJSON("/api/ui/nodes", { signal });
    const alive = nodes.filter((n) => n.state === "ALIVE");
    if (!alive.length) {
      aliveShown = listed = null;
      fill(fileList, emptyState("No live node", "Logs are read from live nodes."));
      return;
    }
    if (!q.get("node_id") || !alive.some((n) => n.node_id === q.get("node_id"))) {
      setQuery({ node_id: alive[0].node_id, file: null, pid: null });
    }
    const aliveIds = alive.map((n) => n.node_id).join(",");
    if (aliveIds !== aliveShown) {
      fill(nodeSelect, ...alive.map((n) => h("option", { value: n.node_id },
        `${n.node_ip}${n.is_head_node ? " (head)" : ""} · ${n.node_id.slice(0, 8)}`)));
      aliveShown = aliveIds;
    }
    nodeSelect.value = q.get("node_id");
    const wanted = `${aliveIds}|${q.get("node_id")}`;
    if (wanted !== listed) {
      groups = await getRayList(`/api/v0/logs?node_id=${q.get("node_id")}`, { signal });
      if (listedNode !== q.get("node_id")) whole.clear();
      listed = wanted;
      listedNode = q.get("node_id");
      drawFiles();
    }
    if (!viewerShown) {
      viewerShown = true;
      viewer.show(title());
    }
  }
  return { title: "Logs", topics: ["nodes"], refresh, dispose: () => viewer.stop() };
}

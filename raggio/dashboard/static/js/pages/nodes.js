// Nodes: each node's health and how much of its resources is in use; one node's workers
// and log files.

import { getJSON, getRayList, query } from "../api.js";
import {
  badge, card, emptyState, fill, h, idLink, info, pageHead, table, timeCell, usageCell, usageRow,
} from "../dom.js";
import * as fmt from "../format.js";
import { demandTable } from "./overview.js";

function nodeName(n) {
  return [n.node_ip, n.is_head_node ? h("span", { class: "badge blue" }, "head") : null];
}

export function list({ root }) {
  const body = h("div", { class: "loading" }, "Loading nodes…");
  root.append(pageHead("Nodes", "Every node that joined the cluster, live ones first."), body);

  async function refresh(signal) {
    const data = await getJSON("/api/ui/nodes", { signal });
    body.className = "";
    fill(body,
      card("Cluster resources", Object.entries(data.usage).map(([k, pair]) => usageRow(k, pair))),
      table([
        { title: "Node", render: (n) => idLink(`#/nodes/${n.node_id}`, n.node_id, 12) },
        { title: "Address", render: nodeName },
        { title: "State", render: (n) => badge(n.state, n.state_message || undefined) },
        { title: "CPU", render: (n) => usageCell("CPU", n.usage.CPU) },
        { title: "GPU", render: (n) => usageCell("GPU", n.usage.GPU) },
        { title: "Memory", render: (n) => usageCell("memory", n.usage.memory) },
        { title: "Object store", render: (n) => usageCell("object_store_memory", n.usage.object_store_memory) },
        { title: "Waiting", num: true, render: (n) => fmt.number(n.pending_demand) },
        { title: "Joined", render: (n) => timeCell(n.start_time_ms) },
        { title: "Died", wide: true, render: (n) => (n.state === "DEAD"
          ? h("span", { class: "error-text" }, n.state_message || "–") : h("span", { class: "muted" }, "–")) },
      ], data.nodes, emptyState("No nodes", "Start a head with `raggio start --head`, then add " +
        "nodes with `raggio start --address=<head>:<port>`."), { rowKey: (n) => n.node_id }));
  }
  return { title: "Nodes", topics: ["nodes"], refresh };
}

function logFiles(nodeId, groups) {
  const names = Object.entries(groups).flatMap(([group, files]) => files.map((f) => [group, f]));
  if (!names.length) return emptyState("No log files", "This node has written no log yet.");
  return h("div", { class: "file-list" }, Object.entries(groups).map(([group, files]) => [
    h("h3", null, `${group} (${files.length})`),
    files.slice(0, 200).map((f) => h("a", { href: `#/logs${query({ node_id: nodeId, file: f })}` }, f)),
    files.length > 200 ? h("p", { class: "muted" }, h("a", { href: `#/logs?node_id=${nodeId}` },
      `${files.length - 200} more on the Logs page →`)) : null]));
}

export function detail({ root, params }) {
  const [nodeId] = params;
  const head = h("div");
  const body = h("div", { class: "loading" }, "Loading the node…");
  root.append(head, body);

  async function refresh(signal) {
    const data = await getJSON(`/api/ui/nodes/${nodeId}`, { signal });
    const n = data.node;
    let files = null;
    if (n.state === "ALIVE") {
      files = await getRayList(`/api/v0/logs?node_id=${nodeId}`, { signal })
        .catch((error) => (error.name === "AbortError" ? Promise.reject(error)
          : h("p", { class: "failed" }, error.message)));
    }
    fill(head, h("div", { class: "crumbs" }, h("a", { href: "#/nodes" }, "Nodes"), " / ",
      h("span", { class: "id" }, nodeId)),
    pageHead(h("span", null, `Node ${n.node_ip} `, badge(n.state)), n.is_head_node ? "the head node" : null,
      h("a", { class: "button", href: `#/actors?node_id=${nodeId}` }, "Its actors"),
      h("a", { class: "button", href: `#/tasks?node_id=${nodeId}` }, "Its tasks"),
      h("a", { class: "button", href: `#/logs?node_id=${nodeId}` }, "Its logs")));
    body.className = "";
    fill(body,
      h("div", { class: "grid cols-2" },
        card("Node", info([
          ["ID", h("span", { class: "id" }, n.node_id)],
          ["State", badge(n.state)],
          n.state_message ? ["Died", h("span", { class: "error-text" }, n.state_message)] : null,
          ["Address", n.node_ip],
          ["Host", n.hostname],
          ["Head", n.is_head_node ? "yes" : "no"],
          ["Joined", fmt.dateTime(n.start_time_ms)],
          n.end_time_ms ? ["Left", fmt.dateTime(n.end_time_ms)] : null,
          ["Labels", h("span", { class: "mono" }, Object.entries(n.labels || {})
            .map(([k, v]) => `${k}=${v}`).join(", "))],
          ["Resources", h("span", { class: "mono" }, fmt.resources(n.resources_total))],
        ])),
        card("Resources in use", Object.keys(n.usage).length
          ? Object.entries(n.usage).map(([k, pair]) => usageRow(k, pair))
          : h("p", { class: "muted" }, "A dead node uses nothing."))),
      data.demand.length ? card("Waiting here", demandTable(data.demand)) : null,
      card(`Workers (${data.workers.length})`, table([
        { title: "PID", num: true, render: (w) => String(w.pid) },
        { title: "State", render: (w) => badge(w.state) },
        { title: "Job", render: (w) => (w.job_id ? h("a", { class: "id", href: `#/jobs/${w.job_id}` }, w.job_id) : "–") },
        { title: "Worker", render: (w) => h("span", { class: "id", title: w.worker_id }, fmt.shortId(w.worker_id, 12)) },
        { title: "Logs", render: (w) => h("a", { href: `#/logs${query({ node_id: nodeId, pid: w.pid })}` }, "output") },
      ], data.workers, emptyState("No workers", n.state === "ALIVE"
        ? "Workers start when tasks or actors run here." : "The node is dead.")),
      data.unanswered.length ? h("p", { class: "muted" },
        `Nodes that did not answer: ${data.unanswered.join(", ")}`) : null),
      n.state === "ALIVE" ? card("Log files", files instanceof Node ? files : logFiles(nodeId, files)) : null);
  }
  return { title: `Node ${fmt.shortId(nodeId)}`, topics: ["nodes"], refresh };
}

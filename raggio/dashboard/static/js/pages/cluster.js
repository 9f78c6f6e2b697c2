// Cluster: what the cluster holds and what it waits for: resources, the autoscaler's view,
// pending demand with its reasons, placement groups.

import { getJSON } from "../api.js";
import {
  badge, card, emptyState, fill, h, idLink, idText, pageHead, rich, table, usageRow,
} from "../dom.js";
import * as fmt from "../format.js";
import { demandTable } from "./overview.js";

function bundles(group) {
  return h("div", null, group.bundles.map((b) => h("div", { class: "mono" },
    `#${b.bundle_id} ${fmt.resources(b.resources)} `,
    b.node_id ? idLink(`#/nodes/${b.node_id}`, b.node_ip || b.node_id) : h("span", { class: "muted" }, "unplaced"))));
}

// The autoscaler's latest round (common/autoscaler_status.py): nodes per type, launches,
// recent failed launches, request_resources, and why it did or did not scale.
function autoscalerView(view) {
  if (!view) {
    return h("p", { class: "muted" }, rich(
      "This cluster has no autoscaler: its nodes are the ones started by hand. Start the " +
      "head with `--autoscaling-config cluster.yaml` (as `raggio up` does) to have one."));
  }
  const s = view.status;
  const limits = s.limits || {};
  // Every type of the cluster file, and any other a node runs as ("(unmanaged)").
  const types = [...new Set([...Object.keys(limits), ...Object.keys(s.running || {}),
    ...Object.keys(s.launching || {})])].sort();
  const recent = view.failures.slice(-5);  // the recent ones, one per type and error
  return h("div", null,
    h("p", { class: "muted" }, `Cluster ${s.cluster_name}: last round ${Math.max(0, Math.round(Date.now() / 1000 - s.time))} s ago.`),
    table([
      { title: "Node type", render: (t) => h("span", { class: "mono" }, t) },
      { title: "Running", num: true, render: (t) => fmt.number((s.running || {})[t] || 0) },
      { title: "Launching", num: true, render: (t) => fmt.number((s.launching || {})[t] || 0) },
      { title: "Min–max", num: true, render: (t) => (limits[t] ? `${limits[t][0]}–${limits[t][1]}` : "–") },
    ], types, emptyState("No node", "The autoscaler counts no node yet.")),
    h("ul", { class: "reasons" }, (s.reasons || []).map((r) => h("li", { class: "reason" }, r))),
    recent.length ? h("div", null, h("h4", null, "Recent failed launches"),
      h("ul", null, recent.map((f) => h("li", { class: "mono" },
        `${f.node_type} × ${f.count}${f.times > 1 ? ` (${f.times} times)` : ""}: ${f.error}`)))) : null,
    view.requests.length ? h("p", { class: "mono" },
      `request_resources: ${view.requests.map((b) => fmt.resources(b)).join(", ")}`) : null);
}

export function page({ root }) {
  const body = h("div", { class: "loading" }, "Loading the cluster…");
  root.append(pageHead("Cluster", "Resources, what waits for them, and placement groups."), body);

  async function refresh(signal) {
    const data = await getJSON("/api/ui/cluster", { signal });
    body.className = "";
    fill(body,
      h("div", { class: "grid cols-2" },
        card("Resources", Object.keys(data.usage).length
          ? Object.entries(data.usage).map(([k, pair]) => usageRow(k, pair))
          : emptyState("No live node", "Start one with `raggio start --head`.")),
        card("Autoscaler", autoscalerView(data.autoscaler))),
      card("Pending demand", demandTable(data.pending_demand)),
      card("Waiting tasks", table([
        { title: "Waiting", num: true, render: (g) => fmt.number(g.count) },
        { title: "Why", wide: true, render: (g) => h("span", { class: "reason" }, g.reason) },
        { title: "For example", wrap: true, render: (g) => h("span", { class: "mono" }, g.example) },
      ], data.pending_tasks, emptyState("No task is waiting", "Every submitted task runs or has run."))),
      card(`Placement groups (${data.placement_groups.length})`, table([
        { title: "Group", render: (g) => idText(g.placement_group_id, 12) },
        { title: "Name", render: (g) => g.name || h("span", { class: "muted" }, "–") },
        { title: "State", render: (g) => badge(g.state) },
        { title: "Strategy", render: (g) => g.strategy },
        { title: "Bundles", render: bundles },
        { title: "Job", render: (g) => h("a", { class: "id", href: `#/jobs/${g.creator_job_id}` }, g.creator_job_id) },
        { title: "Waiting for", wide: true, render: (g) => (g.pending_reason
          ? h("span", { class: "reason" }, g.pending_reason) : h("span", { class: "muted" }, "–")) },
      ], data.placement_groups, emptyState("No placement groups",
        "Reserve resources for a group of tasks or actors:",
        'from ray.util.placement_group import placement_group\n\npg = placement_group([{"CPU": 1}] * 2, strategy="SPREAD")\nray.get(pg.ready())'))));
  }
  return { title: "Cluster", topics: ["nodes", "placement_groups", "tasks", "autoscaler"], refresh };
}

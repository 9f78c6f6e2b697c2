// Cluster: what the cluster holds and what it waits for: resources, pending demand with
// its reasons, placement groups. (The autoscaler's view joins it with the autoscaler.)

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
        card("Autoscaler", h("p", { class: "muted" }, rich(
          "This cluster has no autoscaler: its nodes are the ones started by hand. The " +
          "autoscaler's view (node types, launches, idle nodes) appears here once a cluster " +
          "is started from a cluster config (`raggio up cluster.yaml`).")))),
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
  return { title: "Cluster", topics: ["nodes", "placement_groups", "tasks"], refresh };
}

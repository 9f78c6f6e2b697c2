// Overview: is the cluster healthy, how busy is it, what happened lately.

import { getJSON } from "../api.js";
import {
  badge, card, emptyState, fill, h, pageHead, stat, stateStack, table, timeCell, usageRow,
} from "../dom.js";
import * as fmt from "../format.js";

export const TASK_STATE_ORDER = ["RUNNING", "SUBMITTED_TO_WORKER", "PENDING_NODE_ASSIGNMENT",
  "PENDING_ARGS_AVAIL", "FINISHED", "FAILED"];

function eventLink(event) {
  const href = { node: `#/nodes/${event.id}`, actor: `#/actors/${event.id}`,
    job: `#/jobs/${event.id}` }[event.kind];
  return h("a", { href }, event.message);
}

export function eventList(events) {
  if (!events.length) {
    return emptyState("No events yet",
      "Nodes joining or dying, actors restarting or dying and jobs starting show here.");
  }
  return h("ul", { class: "events" }, events.map((e) => h("li", { dataset: { kind: e.kind } },
    h("time", { title: fmt.dateTime(e.time_ms) }, fmt.clock(e.time_ms)),
    h("span", { class: `sev ${e.severity}`, title: e.severity }),
    h("span", null, eventLink(e), e.count > 1
      ? h("span", { class: "count-tag" }, `×${fmt.number(e.count)}`) : null))));
}

export function jobColumns() {
  return [
    { title: "Job", render: (j) => h("a", { class: "id", href: `#/jobs/${j.job_id || j.submission_id}` },
      j.job_id || j.submission_id) },
    { title: "Status", render: (j) => badge(j.status) },
    { title: "Entrypoint", wrap: true, render: (j) => h("span", { class: "mono" }, j.entrypoint || "–") },
    { title: "Started", render: (j) => timeCell(j.start_time) },
    { title: "Duration", num: true,
      render: (j) => fmt.duration((j.end_time || Date.now()) - j.start_time) },
  ];
}

export function demandTable(groups) {
  return table([
    { title: "Shape", render: (g) => h("span", { class: "mono" }, fmt.resources(g.resources)) },
    { title: "Waiting", num: true, render: (g) => fmt.number(g.count) },
    { title: "Why", wide: true, render: (g) => h("span", { class: "reason" }, g.reason) },
  ], groups, emptyState("No pending demand", "Every task and actor that asked for resources got them."));
}

export function page({ root }) {
  const body = h("div", { class: "loading" }, "Loading the cluster…");
  root.append(pageHead("Overview", "The cluster at a glance; it updates as the cluster changes."),
    body);

  async function refresh(signal) {
    const o = await getJSON("/api/ui/overview", { signal });
    const alive = o.nodes.ALIVE || 0;
    const dead = o.nodes.DEAD || 0;
    const tasks = o.tasks.state_counts;
    const running = tasks.RUNNING || 0;
    const pending = (tasks.PENDING_NODE_ASSIGNMENT || 0) + (tasks.PENDING_ARGS_AVAIL || 0) +
      (tasks.SUBMITTED_TO_WORKER || 0);
    const healthy = alive > 0;
    body.className = "";
    fill(body,
      h("div", { class: "grid stats" },
        stat("Cluster", healthy ? "Healthy" : "No live node",
          dead ? `${fmt.plural(dead, "node")} died` : "every node answers", healthy ? "ok" : "bad"),
        stat("Nodes", fmt.number(alive), `alive${dead ? `, ${fmt.number(dead)} dead` : ""}`),
        stat("Actors", fmt.number(o.actors.ALIVE || 0),
          `alive of ${fmt.number(Object.values(o.actors).reduce((a, b) => a + b, 0))}`),
        stat("Tasks", fmt.number(running), `running, ${fmt.number(pending)} waiting`),
        stat("Jobs", fmt.number(o.jobs.running), `running of ${fmt.number(o.jobs.total)}`)),
      h("div", { class: "grid cols-2" },
        card("Resources", Object.keys(o.usage).length
          ? Object.entries(o.usage).map(([key, pair]) => usageRow(key, pair))
          : emptyState("No live node", "Start one with `raggio start --head`.")),
        card(h("span", null, "Tasks by state ",
          h("span", { class: "muted" }, `${fmt.number(o.tasks.total)} in the history`)),
        o.tasks.total ? stateStack(tasks, TASK_STATE_ORDER, (s) => `#/tasks?state=${s}`)
          : emptyState("No tasks yet", "Run one: ", "@ray.remote\ndef f(x):\n    return x\n\nray.get(f.remote(1))"),
        o.tasks.dropped ? h("p", { class: "muted" },
          `${fmt.number(o.tasks.dropped)} older attempts were dropped from the history.`) : null)),
      h("div", { class: "grid cols-2" },
        card(h("span", null, "Recent jobs ", h("a", { href: "#/jobs", class: "muted" }, "all jobs →")),
          table(jobColumns(), o.jobs.recent, emptyState("No jobs yet",
            "Each driver that connects (a script calling ray.init()) is a job."))),
        card("Recent events", eventList(o.events))),
      o.pending_demand.length ? card("Pending demand", demandTable(o.pending_demand)) : null);
  }

  return { title: "Overview", topics: ["nodes", "actors", "jobs", "tasks"], refresh };
}


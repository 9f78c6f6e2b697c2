// Actors: every actor with its state, where it runs and what it holds; one actor's calls
// and its worker's output.

import { getJSON, query } from "../api.js";
import {
  badge, card, chips, emptyState, fill, h, idLink, info, pageHead, pager, scopeChips, stateStack, table,
  timeCell, timeline,
} from "../dom.js";
import * as fmt from "../format.js";
import { logView } from "../logview.js";
import { TASK_STATE_ORDER } from "./overview.js";
import { taskTable } from "./tasks.js";

const STATES = ["ALIVE", "PENDING_CREATION", "RESTARTING", "DEAD"];
const PAGE = 50;

const NO_ACTORS = emptyState("No actors yet",
  "Create one from a driver connected to this cluster:",
  "@ray.remote\nclass Counter:\n    def inc(self):\n        return 1\n\ncounter = Counter.remote()");

export function list({ root, query: q, setQuery }) {
  const search = h("input", { type: "search", placeholder: "Search id, class, name or pid",
    value: q.get("search") || "", "aria-label": "Search actors" });
  const classSelect = h("select", { "aria-label": "Class" });
  const stateChips = h("div");
  const scopes = h("div");
  const body = h("div", { class: "loading" }, "Loading actors…");
  root.append(pageHead("Actors", "Every actor the cluster has had, the ones that need attention first."),
    h("div", { class: "toolbar" }, stateChips, classSelect, search, scopes), body);
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => setQuery({ search: search.value.trim(), offset: null }), 250);
  });
  classSelect.addEventListener("change", () => setQuery({ class_name: classSelect.value, offset: null }));

  async function refresh(signal) {
    const offset = Number(q.get("offset") || 0);
    const data = await getJSON(`/api/ui/actors${query({
      state: q.get("state"), class_name: q.get("class_name"), search: q.get("search"),
      job_id: q.get("job_id"), node_id: q.get("node_id"), offset, limit: PAGE })}`, { signal });
    const current = q.get("state") || "";
    fill(stateChips, chips([{ value: "", label: "All", count: data.total },
      ...STATES.map((s) => ({ value: s, label: s, count: data.state_counts[s] || 0 }))],
    current, (value) => setQuery({ state: value, offset: null })));
    fill(classSelect, h("option", { value: "" }, "All classes"),
      data.class_names.map((name) => h("option", { value: name }, name)));
    classSelect.value = q.get("class_name") || "";
    fill(scopes, scopeChips(q, setQuery, ["job_id", "node_id"]));
    body.className = "";
    const filtered = current || q.get("class_name") || q.get("search") || q.get("job_id")
      || q.get("node_id");
    fill(body,
      table(actorColumns(), data.actors, data.total ? emptyState("No actor matches",
        "Change the filters above to see more.") : NO_ACTORS, { rowKey: (a) => a.actor_id }),
      pager(offset, PAGE, data.matched, (o) => setQuery({ offset: o || null })),
      filtered ? null : h("p", { class: "muted" }, `${fmt.plural(data.total, "actor")} in all.`));
  }
  return { title: "Actors", topics: ["actors"], refresh };
}

function actorColumns() {
  return [
    { title: "Actor", render: (a) => idLink(`#/actors/${a.actor_id}`, a.actor_id) },
    { title: "Class", render: (a) => h("strong", null, a.class_name) },
    { title: "Name", render: (a) => a.name || h("span", { class: "muted" }, "–") },
    { title: "State", render: (a) => badge(a.state, a.death_cause || undefined) },
    { title: "Node", render: (a) => idLink(`#/nodes/${a.node_id}`, a.node_id) },
    { title: "PID", num: true, render: (a) => (a.pid ? String(a.pid) : "–") },
    { title: "Restarts", num: true, render: (a) => String(a.num_restarts) },
    { title: "Resources", render: (a) => h("span", { class: "mono" }, fmt.resources(a.required_resources)) },
    { title: "Job", render: (a) => h("a", { class: "id", href: `#/jobs/${a.job_id}` }, a.job_id) },
    { title: "Started", render: (a) => timeCell(a.start_time) },
  ];
}

export function detail({ root, params }) {
  const [actorId] = params;
  const head = h("div");
  const body = h("div", { class: "loading" }, "Loading the actor…");
  let suffix = "out";
  const logs = logView({ title: "stdout of the actor's worker", short: true,
    source: () => ({
      url: `/api/v0/logs/file${query({ actor_id: actorId, suffix, lines: 1000 })}`,
      streamUrl: `/api/v0/logs/stream${query({ actor_id: actorId, suffix, lines: 1000 })}`,
      download: `/api/v0/logs/file${query({ actor_id: actorId, suffix, lines: -1 })}`,
    }) });
  const streams = chips([{ value: "out", label: "stdout" }, { value: "err", label: "stderr" }], "out",
    (value) => {
      suffix = value;
      for (const chip of streams.querySelectorAll(".chip")) {
        chip.classList.toggle("on", chip.dataset.value === value);
      }
      logs.show(`${value === "out" ? "stdout" : "stderr"} of the actor's worker`);
    });
  root.append(head, body, card(h("span", null, "Logs ", streams), logs.element));

  async function refresh(signal) {
    const data = await getJSON(`/api/ui/actors/${actorId}`, { signal });
    const a = data.actor;
    fill(head, h("div", { class: "crumbs" }, h("a", { href: "#/actors" }, "Actors"), " / ",
      h("span", { class: "id" }, actorId)),
    pageHead(h("span", null, `${a.class_name} `, badge(a.state)), a.name ? `named "${a.name}"` : null));
    body.className = "";
    fill(body,
      h("div", { class: "grid cols-2" },
        card("Actor", info([
          ["ID", h("span", { class: "id" }, a.actor_id)],
          ["State", badge(a.state)],
          a.death_cause ? ["Death cause", h("span", { class: "error-text" }, a.death_cause)] : null,
          ["Class", a.class_name],
          ["Name", a.name],
          ["Namespace", h("span", { class: "mono" }, a.ray_namespace)],
          ["Job", h("a", { class: "id", href: `#/jobs/${a.job_id}` }, a.job_id)],
          ["Node", idLink(`#/nodes/${a.node_id}`, a.node_id, 16)],
          ["PID", a.pid || "–"],
          ["Address", a.address],
          ["Restarts", String(a.num_restarts)],
          ["Detached", a.is_detached ? "yes" : "no"],
          ["Resources", h("span", { class: "mono" }, fmt.resources(a.required_resources))],
          ["Started", fmt.dateTime(a.start_time)],
          ["Ended", a.end_time ? fmt.dateTime(a.end_time) : "–"],
        ])),
        card("History", timeline(a.events),
          h("h2", { class: "spaced" }, "Calls ", h("a", { class: "muted", href: `#/tasks?actor_id=${actorId}` },
            `all ${fmt.number(data.calls_matched)} →`)),
          data.calls_matched ? stateStack(data.call_states, TASK_STATE_ORDER,
            (s) => `#/tasks?actor_id=${actorId}&state=${s}`) : h("p", { class: "muted" }, "No calls yet."))),
      card("Latest calls", taskTable(data.calls, emptyState("No calls yet",
        "Calls of this actor's methods (counter.inc.remote()) show here."), { hideActor: true })));
    if (a.pid) logs.start();
    else logs.element.querySelector("pre").textContent = "The actor has no worker yet.";
  }
  return { title: `Actor ${fmt.shortId(actorId)}`, topics: ["actors", "tasks"], refresh,
    dispose: () => logs.stop() };
}


// Tasks: the task history a page at a time, newest first, with why each waiting task waits
// and how each failed one failed; one task's attempts.

import { getJSON, query } from "../api.js";
import {
  badge, card, chips, emptyState, fill, h, idLink, idText, info, pageHead, pager, scopeChips,
  SCOPES, table, timeCell, timeline,
} from "../dom.js";
import * as fmt from "../format.js";
import { logView } from "../logview.js";
import { TASK_STATE_ORDER } from "./overview.js";

const PAGE = 50;
const TYPES = ["NORMAL_TASK", "ACTOR_TASK", "ACTOR_CREATION_TASK"];

const NO_TASKS = emptyState("No tasks yet", "Run a task from a driver connected to this cluster:",
  "@ray.remote\ndef square(x):\n    return x * x\n\nray.get([square.remote(i) for i in range(10)])");

/** What a task row says about where it stands: why it waits, or how it failed. */
function why(t) {
  if (t.state === "FAILED") {
    return h("span", { class: "error-text" }, [t.error_type, firstLine(t.error_message)]
      .filter(Boolean).join(": "));
  }
  if (t.pending_reason) return h("span", { class: "reason" }, t.pending_reason);
  return h("span", { class: "muted" }, "–");
}

function firstLine(text) {
  if (!text) return "";
  const lines = text.trim().split("\n");
  return lines[lines.length - 1].slice(0, 300);
}

function duration(t) {
  if (!t.start_time_ms) return "–";
  return fmt.duration((t.end_time_ms || Date.now()) - t.start_time_ms);
}

const KINDS = { NORMAL_TASK: "task", ACTOR_TASK: "actor call", ACTOR_CREATION_TASK: "actor creation",
  DRIVER_TASK: "driver" };

/** A task's name, and below it what kind of task it is (and of which actor). */
function nameCell(t, hideActor) {
  return [h("strong", null, t.name), h("div", { class: "sub-line" }, KINDS[t.type] || t.type,
    t.actor_id && !hideActor ? [" of ", idLink(`#/actors/${t.actor_id}`, t.actor_id)] : null)];
}

/** Where a task ran: its node, and its worker's pid below. */
function whereCell(t) {
  if (!t.node_id) return h("span", { class: "muted" }, "–");
  return [idLink(`#/nodes/${t.node_id}`, t.node_id),
    t.worker_pid ? h("div", { class: "sub-line" }, `pid ${t.worker_pid}`) : null];
}

export function taskTable(rows, empty, { hideActor = false } = {}) {
  return table([
    { title: "Task", render: (t) => idLink(`#/tasks/${t.task_id}`, t.task_id, 10) },
    { title: "Name", wrap: true, render: (t) => nameCell(t, hideActor) },
    { title: "State", render: (t) => badge(t.state) },
    { title: "Ran on", render: whereCell },
    { title: "Submitted", render: (t) => timeCell(t.creation_time_ms) },
    { title: "Ran for", num: true, render: duration },
    { title: "Waiting for / error", wide: true, render: why },
  ], rows, empty, { rowKey: (t) => `${t.task_id}:${t.attempt_number}` });
}

export function list({ root, query: q, setQuery }) {
  const name = h("input", { type: "search", placeholder: "Search by name", value: q.get("name") || "",
    "aria-label": "Task name" });
  const type = h("select", { "aria-label": "Type" }, h("option", { value: "" }, "All types"),
    TYPES.map((t) => h("option", { value: t }, t)));
  type.value = q.get("type") || "";
  const stateChips = h("div");
  const scopes = h("div");
  const body = h("div", { class: "loading" }, "Loading tasks…");
  root.append(pageHead("Tasks", "The task history, newest first: each attempt of each task."),
    h("div", { class: "toolbar" }, stateChips, type, name, scopes), body);
  let typing = null;
  name.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => setQuery({ name: name.value.trim(), offset: null }), 250);
  });
  type.addEventListener("change", () => setQuery({ type: type.value, offset: null }));

  async function refresh(signal) {
    const offset = Number(q.get("offset") || 0);
    const params = { state: q.get("state"), type: q.get("type"), name: q.get("name") };
    for (const [key] of SCOPES) params[key] = q.get(key);
    const data = await getJSON(`/api/ui/tasks${query({ ...params, offset, limit: PAGE })}`, { signal });
    const inScope = Object.values(data.state_counts).reduce((a, b) => a + b, 0);
    const current = q.get("state") || "";
    fill(stateChips, chips([{ value: "", label: "All", count: inScope },
      ...TASK_STATE_ORDER.map((s) => ({ value: s, label: s, count: data.state_counts[s] || 0 }))],
    current, (value) => setQuery({ state: value, offset: null })));
    fill(scopes, scopeChips(q, setQuery));
    body.className = "";
    fill(body,
      taskTable(data.tasks, data.total ? emptyState("No task matches",
        "Change the filters above to see more.") : NO_TASKS),
      pager(offset, PAGE, data.matched, (o) => setQuery({ offset: o || null })),
      h("p", { class: "muted" }, `${fmt.plural(data.total, "attempt")} in the history` +
        (data.dropped ? `; ${fmt.number(data.dropped)} older ones were dropped.` : ".")));
  }
  return { title: "Tasks", topics: ["tasks"], refresh };
}

export function detail({ root, params }) {
  const [taskId] = params;
  const head = h("div");
  const body = h("div", { class: "loading" }, "Loading the task…");
  let attempt = 0;
  const logs = logView({ title: "What the task printed", short: true, follow: false,
    source: () => ({ url: `/api/v0/logs/file${query({ task_id: taskId, attempt_number: attempt, lines: 1000 })}` }) });
  root.append(head, body, card("Output", logs.element));

  async function refresh(signal) {
    const { attempts } = await getJSON(`/api/ui/tasks/${taskId}`, { signal });
    const last = attempts[attempts.length - 1];
    attempt = last.attempt_number;
    fill(head, h("div", { class: "crumbs" }, h("a", { href: "#/tasks" }, "Tasks"), " / ",
      h("span", { class: "id" }, taskId)),
    pageHead(h("span", null, `${last.name} `, badge(last.state)),
      last.func_or_class_name !== last.name ? last.func_or_class_name : null));
    body.className = "";
    fill(body, ...attempts.slice().reverse().map((t) => card(
      `Attempt ${t.attempt_number}`, info([
        ["State", badge(t.state)],
        t.pending_reason ? ["Waiting for", h("span", { class: "reason" }, t.pending_reason)] : null,
        t.error_type ? ["Error", h("span", { class: "error-text" }, t.error_type)] : null,
        ["Task ID", h("span", { class: "id" }, t.task_id)],
        ["Type", t.type],
        ["Function", h("span", { class: "mono" }, t.func_or_class_name)],
        ["Job", h("a", { class: "id", href: `#/jobs/${t.job_id}` }, t.job_id)],
        t.actor_id ? ["Actor", idLink(`#/actors/${t.actor_id}`, t.actor_id, 16)] : null,
        ["Parent task", idText(t.parent_task_id, 16)],
        ["Node", idLink(`#/nodes/${t.node_id}`, t.node_id, 16)],
        ["Worker", t.worker_pid ? `pid ${t.worker_pid} (${fmt.shortId(t.worker_id, 12)})` : "–"],
        ["Resources", h("span", { class: "mono" }, fmt.resources(t.required_resources))],
        t.placement_group_id ? ["Placement group", idText(t.placement_group_id, 16)] : null,
        ["Submitted", fmt.dateTime(t.creation_time_ms)],
        ["Ran for", duration(t)],
        ["States", timeline(t.events)],
      ]), t.error_message ? h("pre", { class: "log-view error-box" }, t.error_message) : null)));
    if (last.worker_pid) logs.start();
    else logs.element.querySelector("pre").textContent = "The task has not run on a worker yet.";
  }
  return { title: `Task ${fmt.shortId(taskId)}`, topics: ["tasks"], refresh, dispose: () => logs.stop() };
}

// Jobs: every driver that connected (a job), its status, and what its workers printed.

import { getJSON, getRayList, query } from "../api.js";
import { badge, card, emptyState, fill, h, info, pageHead, stateStack, table } from "../dom.js";
import * as fmt from "../format.js";
import { logView } from "../logview.js";
import { jobColumns, TASK_STATE_ORDER } from "./overview.js";
import { taskTable } from "./tasks.js";

const SUBMIT_NOTE = "Submitting jobs to the cluster (`raggio job submit`, Ray's /api/jobs/ " +
  "routes) comes with the jobs issue; until then each driver that calls ray.init() is a job.";

async function readJobs(signal) {
  const listing = await getRayList("/api/v0/jobs?detail=true&limit=10000", { signal });
  return listing.result.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
}

export function list({ root }) {
  const body = h("div", { class: "loading" }, "Loading jobs…");
  root.append(pageHead("Jobs", "Each driver that connected to the cluster."),
    h("div", { class: "note", id: "submit-note" }, SUBMIT_NOTE), body);

  async function refresh(signal) {
    const jobs = await readJobs(signal);
    const columns = [...jobColumns(),
      { title: "Driver", render: (j) => j.driver_info
        ? `pid ${j.driver_info.pid} on ${j.driver_info.node_ip_address}` : "–" },
      { title: "Namespace", render: (j) => h("span", { class: "mono" }, fmt.shortId(j.ray_namespace, 13)) }];
    body.className = "";
    fill(body, table(columns, jobs, emptyState("No jobs yet",
      "A job starts when a driver connects to the cluster. On the head's machine:",
      'python -c "import raggio as ray; ray.init(); print(ray.cluster_resources())"'),
    { rowKey: (j) => j.job_id }));
  }
  return { title: "Jobs", topics: ["jobs"], refresh };
}

export function detail({ root, params }) {
  const [jobId] = params;
  const head = h("div");
  const body = h("div", { class: "loading" }, "Loading the job…");
  const logs = logView({ title: "Output of the job's workers", short: true,
    source: () => ({ url: `/api/ui/jobs/${jobId}/logs?lines=1000` }) });
  root.append(head, body, card("Logs", logs.element));

  async function refresh(signal) {
    const [jobs, tasks] = await Promise.all([readJobs(signal),
      getJSON(`/api/ui/tasks${query({ job_id: jobId, limit: 20 })}`, { signal })]);
    const job = jobs.find((j) => j.job_id === jobId || j.submission_id === jobId);
    fill(head, h("div", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", jobId),
      pageHead(h("span", null, `Job ${jobId} `, job ? badge(job.status) : null),
        job ? job.entrypoint : null,
        h("a", { class: "button", href: `#/actors?job_id=${jobId}` }, "Its actors"),
        h("a", { class: "button", href: `#/tasks?job_id=${jobId}` }, "Its tasks")));
    body.className = "";
    if (!job) {
      fill(body, emptyState("No such job", `This cluster has no job ${jobId}.`));
      return;
    }
    fill(body, h("div", { class: "grid cols-2" },
      card("Job", info([
        ["Status", badge(job.status)],
        ["Entrypoint", h("span", { class: "mono" }, job.entrypoint || "–")],
        ["Type", job.type],
        ["Driver", job.driver_info ? `pid ${job.driver_info.pid} on ${job.driver_info.node_ip_address}` : "–"],
        ["Namespace", job.ray_namespace ? h("span", { class: "mono" }, job.ray_namespace) : null],
        ["Started", fmt.dateTime(job.start_time)],
        ["Ended", job.end_time ? fmt.dateTime(job.end_time) : "still running"],
        ["Duration", fmt.duration((job.end_time || Date.now()) - job.start_time)],
        job.message ? ["Message", job.message] : null,
        Object.keys(job.metadata || {}).length ? ["Metadata", JSON.stringify(job.metadata)] : null,
        Object.keys(job.runtime_env || {}).length ? ["Runtime env", h("span", { class: "mono" }, JSON.stringify(job.runtime_env))] : null,
      ])),
      card(h("span", null, "Tasks ", h("a", { class: "muted", href: `#/tasks?job_id=${jobId}` },
        `all ${fmt.number(tasks.matched)} →`)),
      tasks.matched ? stateStack(tasks.state_counts, TASK_STATE_ORDER,
        (s) => `#/tasks?job_id=${jobId}&state=${s}`) : emptyState("No tasks", "This job ran no task."))),
    card("Latest tasks", taskTable(tasks.tasks, emptyState("No tasks", "This job ran no task."))),
    h("p", { class: "muted" }, SUBMIT_NOTE));
    logs.start();
  }
  return { title: `Job ${jobId}`, topics: ["jobs", "tasks"], refresh, dispose: () => logs.stop() };
}

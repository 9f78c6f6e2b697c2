// Jobs: submitted jobs (`raggio job submit`, Ray's /api/jobs/) and every driver that
// connected, their status and message, and a job's log: a submitted job's driver log, and
// what its workers printed.

import { getJSON, query } from "../api.js";
import { badge, card, emptyState, fill, h, info, pageHead, stateStack, table, timeCell } from "../dom.js";
import * as fmt from "../format.js";
import { logView } from "../logview.js";
import { TASK_STATE_ORDER } from "./overview.js";
import { taskTable } from "./tasks.js";

const SUBMIT_HINT = "raggio job submit -- python -c \"import raggio; raggio.init(); " +
  "print(raggio.cluster_resources())\"";

/** Ray's JobDetails rows (/api/jobs/), newest first. */
async function readJobs(signal) {
  const jobs = await getJSON("/api/jobs/", { signal });
  return jobs.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
}

const jobKey = (j) => j.submission_id || j.job_id;
const driverText = (j) => j.driver_info
  ? `pid ${j.driver_info.pid} on ${j.driver_info.node_ip_address}` : "–";

function columns() {
  return [
    { title: "Job", render: (j) => h("a", { class: "id", href: `#/jobs/${jobKey(j)}` }, jobKey(j)) },
    { title: "Type", render: (j) => j.type },
    { title: "Status", render: (j) => badge(j.status) },
    { title: "Entrypoint", wrap: true, render: (j) => h("span", { class: "mono" }, j.entrypoint || "–") },
    { title: "Message", wrap: true, render: (j) => (j.message || "").split("\n")[0] || "–" },
    { title: "Started", render: (j) => timeCell(j.start_time) },
    { title: "Duration", num: true,
      render: (j) => fmt.duration((j.end_time || Date.now()) - j.start_time) },
    { title: "Driver", render: driverText },
  ];
}

export function list({ root }) {
  const body = h("div", { class: "loading" }, "Loading jobs…");
  root.append(pageHead("Jobs", "Submitted jobs, and each driver that connected to the cluster."),
    body);

  async function refresh(signal) {
    const jobs = await readJobs(signal);
    body.className = "";
    fill(body, table(columns(), jobs, emptyState("No jobs yet",
      "Submit one, or connect a driver (ray.init()). On the head's machine:", SUBMIT_HINT),
    { rowKey: jobKey }));
  }
  return { title: "Jobs", topics: ["jobs"], refresh };
}

export function detail({ root, params }) {
  const [jobId] = params;
  const head = h("div");
  const body = h("div", { class: "loading" }, "Loading the job…");
  let job = null;
  // A submitted job's driver log (its entrypoint's output), then its workers' output.
  const driverLog = logView({ title: "Driver log (the entrypoint's output)", short: true,
    source: () => job && job.type === "SUBMISSION"
      ? { url: `/api/ui/jobs/${job.submission_id}/driver_log` } : null,
    empty: "Only a submitted job has a driver log here: a driver's own output is in the " +
      "terminal that runs it." });
  const workerLog = logView({ title: "Output of the job's workers", short: true,
    source: () => job && job.job_id ? { url: `/api/ui/jobs/${job.job_id}/logs?lines=1000` } : null,
    empty: "This job has no driver that joined the cluster yet." });
  root.append(head, body, card("Logs", driverLog.element, workerLog.element));

  async function refresh(signal) {
    job = (await readJobs(signal)).find((j) => j.job_id === jobId || j.submission_id === jobId);
    const tasks = job && job.job_id
      ? await getJSON(`/api/ui/tasks${query({ job_id: job.job_id, limit: 20 })}`, { signal })
      : { matched: 0, tasks: [], state_counts: {} };
    const scope = job && job.job_id;
    fill(head, h("div", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", jobId),
      pageHead(h("span", null, `Job ${jobId} `, job ? badge(job.status) : null),
        job ? job.entrypoint : null,
        scope ? h("a", { class: "button", href: `#/actors?job_id=${scope}` }, "Its actors") : null,
        scope ? h("a", { class: "button", href: `#/tasks?job_id=${scope}` }, "Its tasks") : null));
    body.className = "";
    if (!job) {
      fill(body, emptyState("No such job", `This cluster has no job ${jobId}.`));
      return;
    }
    fill(body, h("div", { class: "grid cols-2" },
      card("Job", info([
        ["Status", badge(job.status)],
        ["Type", job.type],
        job.submission_id ? ["Submission id", h("span", { class: "mono" }, job.submission_id)] : null,
        ["Job id", job.job_id ? h("span", { class: "mono" }, job.job_id) : "–"],
        ["Entrypoint", h("span", { class: "mono" }, job.entrypoint || "–")],
        ["Driver", driverText(job)],
        ["Started", fmt.dateTime(job.start_time)],
        ["Ended", job.end_time ? fmt.dateTime(job.end_time) : "still running"],
        ["Duration", fmt.duration((job.end_time || Date.now()) - job.start_time)],
        job.driver_exit_code !== null && job.driver_exit_code !== undefined
          ? ["Exit code", String(job.driver_exit_code)] : null,
        job.message ? ["Message", h("pre", { class: "message" }, job.message)] : null,
        Object.keys(job.metadata || {}).length ? ["Metadata", JSON.stringify(job.metadata)] : null,
        Object.keys(job.runtime_env || {}).length ? ["Runtime env", h("span", { class: "mono" }, JSON.stringify(job.runtime_env))] : null,
      ])),
      card(h("span", null, "Tasks ", scope ? h("a", { class: "muted", href: `#/tasks?job_id=${scope}` },
        `all ${fmt.number(tasks.matched)} →`) : null),
      tasks.matched ? stateStack(tasks.state_counts, TASK_STATE_ORDER,
        (s) => `#/tasks?job_id=${scope}&state=${s}`) : emptyState("No tasks", "This job ran no task."))),
    card("Latest tasks", taskTable(tasks.tasks, emptyState("No tasks", "This job ran no task."))));
    driverLog.start();
    workerLog.start();
  }
  return { title: `Job ${jobId}`, topics: ["jobs", "tasks"], refresh,
    dispose: () => { driverLog.stop(); workerLog.stop(); } };
}

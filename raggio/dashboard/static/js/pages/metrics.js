// Metrics: charts come with the metrics issue; this page says so and how they will work.

import { card, emptyState, h, pageHead, rich } from "../dom.js";

export function page({ root }) {
  root.append(pageHead("Metrics", "Charts of the cluster over time."),
    card(null, emptyState("No metrics yet",
      "raggio does not export metrics yet; charts of CPU, memory, object store and task " +
      "throughput come with the metrics issue. Each node will then serve Prometheus metrics " +
      "with Ray's names (ray_node_cpu_utilization, ray_tasks, ...), the dashboard will list " +
      "those endpoints for Prometheus's service discovery (/api/prometheus/sd, as Ray), and " +
      "this page will draw them from a Prometheus you point it at:",
      "# prometheus.yml\nscrape_configs:\n  - job_name: raggio\n    http_sd_configs:\n" +
      "      - url: http://<head>:8265/api/prometheus/sd\n        authorization:\n" +
      "          credentials: <cluster token>"),
    h("p", { class: "muted" }, rich("Until then the Overview and Nodes pages show what is in " +
      "use now, and `raggio status` prints the same in a terminal."))));
  return { title: "Metrics", topics: [], refresh: async () => {} };
}

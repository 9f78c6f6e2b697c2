// Numbers, sizes, times and ids as the pages print them.

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let i = 0;
  while (Math.abs(n) >= 1024 && i < BYTE_UNITS.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${BYTE_UNITS[i]}`;
}

export function number(n) {
  if (n === null || n === undefined) return "–";
  return Number.isInteger(n) ? n.toLocaleString("en-US")
    : n.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

/** Resources whose amounts are bytes (the rest are counts). */
export const BYTE_RESOURCES = new Set(["memory", "object_store_memory"]);

export function amount(resource, value) {
  return BYTE_RESOURCES.has(resource) ? bytes(value) : number(value);
}

export function resourceName(key) {
  return { object_store_memory: "Object store", memory: "Memory" }[key] || key;
}

/** {"CPU": 1, "memory": 2**30} -> "1 CPU, 1.00 GiB memory". */
export function resources(map) {
  const keys = Object.keys(map || {});
  if (!keys.length) return "–";
  return keys.map((k) => `${amount(k, map[k])} ${k}`).join(", ");
}

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function clock(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

export function dateTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function ago(ms) {
  if (!ms) return "–";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/**
 * A long hex id, shortened: its start and its end, as ids made by one driver share their
 * start and differ at the end (a counter) while random ones differ anywhere.
 */
export function shortId(id, n = 8) {
  if (!id || id.length <= n + 4) return id || "–";
  const tail = Math.max(4, Math.floor(n / 2));
  return `${id.slice(0, n - tail + 2)}…${id.slice(-tail)}`;
}

export function plural(n, word, words = `${word}s`) {
  return `${number(n)} ${n === 1 ? word : words}`;
}

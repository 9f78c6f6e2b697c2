// Asking the dashboard's HTTP API, and knowing whether the cluster answers.
//
// Every answer is Ray's envelope ({result, msg, data}); getJSON returns its data. A 503
// means the control store does not answer, a failed fetch that the dashboard itself does
// not: both raise the banner (health), which the next good answer (or the live stream's
// status) takes down again. A 401 means the session ended: back to the login page.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** What is down, if anything: {dashboard: bool, store: bool, message}. */
export const health = {
  dashboardUp: true,
  storeUp: true,
  message: "",
  listeners: new Set(),
  set(changes) {
    const before = this.dashboardUp && this.storeUp;
    Object.assign(this, changes);
    const now = this.dashboardUp && this.storeUp;
    for (const listener of this.listeners) listener({ recovered: !before && now });
  },
  subscribe(listener) { this.listeners.add(listener); },
};

export function loginUrl() {
  const here = location.pathname + location.search + location.hash;
  return `/login?next=${encodeURIComponent(here)}`;
}

async function send(url, options) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...options });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    health.set({ dashboardUp: false,
      message: `The dashboard at ${location.host} does not answer; retrying…` });
    throw new ApiError("The dashboard does not answer.", 0);
  }
  if (response.status === 401) {
    location.assign(loginUrl());
    throw new ApiError("Not logged in.", 401);
  }
  return response;
}

async function errorMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    return body.msg || body.message || text;
  } catch {
    return text || `${response.status} ${response.statusText}`;
  }
}

/** The data of a JSON answer; raises ApiError with the server's message otherwise. */
export async function getJSON(url, { signal } = {}) {
  const response = await send(url, { signal, headers: { Accept: "application/json" } });
  if (response.status === 503) {
    const message = await errorMessage(response);
    health.set({ dashboardUp: true, storeUp: false, message });
    throw new ApiError(message, 503);
  }
  if (!response.ok) {
    health.set({ dashboardUp: true });
    throw new ApiError(await errorMessage(response), response.status);
  }
  const body = await response.json();
  health.set({ dashboardUp: true, storeUp: true });
  if (body && body.result === false) throw new ApiError(body.msg, response.status);
  return body && "data" in body && "result" in body ? body.data : body;
}

/** Ray's list answers nest the rows: data.result.result. */
export async function getRayList(url, options) {
  const data = await getJSON(url, options);
  return data.result;
}

/** A text answer (a log file); an ApiError with the server's message when it fails. */
export async function getText(url, { signal } = {}) {
  const response = await send(url, { signal });
  if (!response.ok) {
    const message = await errorMessage(response);
    if (response.status === 503) health.set({ storeUp: false, message });
    throw new ApiError(message, response.status);
  }
  return response.text();
}

/** A streamed text answer: calls onText(chunk) as it comes, until it ends or is aborted. */
export async function streamText(url, onText, { signal } = {}) {
  const response = await send(url, { signal });
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
}

/** A query string of the non-empty values: {a: 1, b: ""} -> "?a=1". */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// The live stream (/api/ui/events): which tables changed, and whether the control store
// answers. One EventSource for the whole app; the browser reconnects it by itself. A
// stream refused for want of a session (401) sends the page to the login page.

import { health, loginUrl } from "./api.js";

const STREAM = "/api/ui/events";

const listeners = new Set();
let source = null;

/** Call onChange(topics) whenever tables change; returns the unsubscribe function. */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The status of the stream's answer now (0: none), without keeping the stream. */
async function streamStatus() {
  const abort = new AbortController();
  try {
    const response = await fetch(STREAM, { credentials: "same-origin", signal: abort.signal });
    return response.status;
  } catch {
    return 0;
  } finally {
    abort.abort();
  }
}

/** After a refused stream: the login page if the session ended (EventSource does not say
 * why it was refused: ask again to learn the status), else another try shortly. */
async function reconnectOrLogIn(setState) {
  if ((await streamStatus()) === 401) {
    location.assign(loginUrl());
    return;
  }
  setTimeout(() => openStream(setState), 3000);
}

/** Open the stream; setState(connected) tells the sidebar's "Live" dot. The stream closes
 * while the page is hidden in the back/forward cache and opens again when it comes back:
 * a cached page's open stream holds one of the browser's six connections to this host,
 * and a few such pages would leave none for the page in front. */
export function connect(setState) {
  openStream(setState);
  addEventListener("pagehide", () => source && source.close());
  addEventListener("pageshow", (event) => {
    if (event.persisted) openStream(setState);
  });
}

function openStream(setState) {
  source = new EventSource(STREAM);
  source.addEventListener("open", () => {
    setState(true);
    health.set({ dashboardUp: true });
  });
  source.addEventListener("error", () => {
    setState(false);
    if (source.readyState === EventSource.CLOSED) {
      reconnectOrLogIn(setState);
    } else {
      health.set({ dashboardUp: false,
        message: `The dashboard at ${location.host} does not answer; retrying…` });
    }
  });
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    health.set({ dashboardUp: true, storeUp: status.available,
      message: status.available ? "" : status.message });
  });
  source.addEventListener("changed", (event) => {
    const { topics } = JSON.parse(event.data);
    for (const listener of listeners) listener(topics);
  });
}

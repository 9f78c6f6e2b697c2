// The live stream (/api/ui/events): which tables changed, and whether the control store
// answers. One EventSource for the whole app; the browser reconnects it by itself.

import { health } from "./api.js";

const listeners = new Set();
let source = null;

/** Call onChange(topics) whenever tables change; returns the unsubscribe function. */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Open the stream; setState(connected) tells the sidebar's "Live" dot. */
export function connect(setState) {
  source = new EventSource("/api/ui/events");
  source.addEventListener("open", () => {
    setState(true);
    health.set({ dashboardUp: true });
  });
  source.addEventListener("error", () => {
    setState(false);
    if (source.readyState === EventSource.CLOSED) {
      // A refused stream (the session ended, or the dashboard restarted without it):
      // try again shortly rather than never.
      setTimeout(() => connect(setState), 3000);
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

// A log viewer: the end of a file, and new lines as they come while "Follow" is on.
//
// source() says what to show: {url, streamUrl?, download?} or null (nothing chosen yet).
// With a streamUrl (Ray's /api/v0/logs/stream) following reads one long answer; without
// one it reads url again every POLL_MS. At most MAX_LINES lines are kept on the page.

import { ApiError, getText, streamText } from "./api.js";
import { h } from "./dom.js";

const MAX_LINES = 5000;
const POLL_MS = 2000;

export function logView({ title, source, short = false, follow = true, empty }) {
  const titleEl = h("span", { class: "title" }, title || "");
  const followButton = h("button", { type: "button", class: "button", "aria-pressed": "false" }, "Follow");
  const reloadButton = h("button", { type: "button", class: "button" }, "Reload");
  const download = h("a", { class: "button", hidden: true }, "Download");
  const status = h("span", { class: "muted" });
  const pre = h("pre", { class: `log-view${short ? " short" : ""}`, tabindex: "0" });
  const element = h("div", { class: "log" },
    h("div", { class: "log-head" }, titleEl, status, followButton, reloadButton, download), pre);

  let following = follow;
  let started = false;
  let controller = null;
  let timer = null;
  let text = "";

  function render() {
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    let lines = text.split("\n");
    if (lines.length > MAX_LINES) {
      lines = lines.slice(-MAX_LINES);
      text = lines.join("\n");
    }
    pre.textContent = text;
    if (atBottom || !started) pre.scrollTop = pre.scrollHeight;
  }

  function setFollowing(on) {
    following = on;
    followButton.classList.toggle("on", on);
    followButton.setAttribute("aria-pressed", String(on));
    followButton.textContent = on ? "Following" : "Follow";
  }

  function stop() {
    controller?.abort();
    controller = null;
    clearTimeout(timer);
    timer = null;
  }

  async function load() {
    stop();
    const src = source();
    if (!src) {
      started = false;
      pre.textContent = empty || "Pick a log file.";
      return;
    }
    controller = new AbortController();
    const { signal } = controller;
    if (src.download) {
      download.hidden = false;
      download.setAttribute("href", src.download);
    } else {
      download.hidden = true;
    }
    status.textContent = "";
    try {
      if (following && src.streamUrl) {
        text = "";
        started = false;
        render();
        started = true;
        status.textContent = "streaming";
        await streamText(src.streamUrl, (chunk) => { text += chunk; render(); }, { signal });
        status.textContent = "the stream ended";
      } else {
        text = await getText(src.url, { signal });
        if (!text) text = "";
        render();
        started = true;
        pre.dataset.empty = String(!text);
        if (!text) pre.textContent = "(empty so far)";
        if (following) timer = setTimeout(load, POLL_MS);
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      status.textContent = "";
      pre.textContent = error instanceof ApiError ? error.message : String(error);
      if (following && (!(error instanceof ApiError) || error.status === 503 || error.status === 0)) {
        timer = setTimeout(load, POLL_MS * 2);
      }
    }
  }

  followButton.addEventListener("click", () => { setFollowing(!following); load(); });
  reloadButton.addEventListener("click", () => load());
  setFollowing(following);

  return {
    element,
    /** Start showing the source, once (later calls do nothing until show()). */
    start() {
      if (controller || timer || started) return;
      load();
    },
    /** Show the source again (a new file was picked). */
    show(newTitle) {
      if (newTitle !== undefined) titleEl.textContent = newTitle;
      started = false;
      load();
    },
    stop,
  };
}

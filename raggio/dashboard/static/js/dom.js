// Building the page: h() makes elements (text always as text, never as HTML), and the
// widgets every page shares: status badges, usage bars, tables, pagers, empty states.

import * as fmt from "./format.js";

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

/** Replace an element's children (null, false and nested arrays allowed, as in h()). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Which colour a state is shown in. */
const STATE_COLOURS = {
  green: ["ALIVE", "FINISHED", "SUCCEEDED", "CREATED", "HEALTHY"],
  blue: ["RUNNING", "SUBMITTED_TO_WORKER", "DRIVER", "LEASED"],
  amber: ["PENDING", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "PENDING_CREATION",
    "DEPENDENCIES_UNREADY", "RESCHEDULING", "RECOVERING"],
  orange: ["RESTARTING"],
  red: ["DEAD", "FAILED", "ERROR"],
  grey: ["REMOVED", "STOPPED", "IDLE"],
};
const COLOUR_OF = {};
for (const [colour, states] of Object.entries(STATE_COLOURS)) {
  for (const state of states) COLOUR_OF[state] = colour;
}

export function colourOf(state) {
  return COLOUR_OF[state] || "grey";
}

export function badge(state, title) {
  return h("span", { class: `badge ${colourOf(state)}`, title }, state || "–");
}

/** A usage bar: [used, total] of a resource. */
export function bar(used, total) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const fill = h("span");
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  const level = share >= 0.9 ? " warn" : "";
  return h("div", {
    class: `bar${level}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": total,
    "aria-valuenow": used,
  }, fill);
}

export function usageRow(key, [used, total]) {
  return h("div", { class: "bar-row", dataset: { resource: key } },
    h("span", { class: "name" }, fmt.resourceName(key)),
    bar(used, total),
    h("span", { class: "nums" }, `${fmt.amount(key, used)} / ${fmt.amount(key, total)}`));
}

export function usageCell(key, pair) {
  if (!pair) return h("span", { class: "muted" }, "–");
  const [used, total] = pair;
  return h("div", { class: "cell-bar", title: `${fmt.resourceName(key)} in use` },
    bar(used, total), h("span", { class: "nums" },
      `${fmt.amount(key, used)} / ${fmt.amount(key, total)}`));
}

/** A link to an entity's page, showing the start of its id (all of it on hover). */
export function idLink(href, id, n = 8) {
  if (!id) return h("span", { class: "muted" }, "–");
  return h("a", { class: "id", href, title: id }, fmt.shortId(id, n));
}

export function idText(id, n = 8) {
  if (!id) return h("span", { class: "muted" }, "–");
  return h("span", { class: "id", title: id }, fmt.shortId(id, n));
}

export function timeCell(ms) {
  return ms ? h("time", { title: fmt.dateTime(ms) }, fmt.ago(ms)) : h("span", { class: "muted" }, "–");
}

/**
 * A table. columns: [{title, render(row) -> node|string, num?, wrap?, wide?}] (wide: a
 * wrapped column of sentences, kept readable); rows: objects;
 * empty: what to show when there are no rows.
 */
export function table(columns, rows, empty, { rowKey } = {}) {
  if (!rows.length) return empty;
  return h("div", { class: "table-wrap" }, h("table", null,
    h("thead", null, h("tr", null, columns.map((c) =>
      h("th", { class: c.num ? "num" : null }, c.title)))),
    h("tbody", null, rows.map((row) => h("tr", { dataset: rowKey ? { key: rowKey(row) } : null },
      columns.map((c) => h("td", { class: c.num ? "num" : c.wide ? "wrap wide" : c.wrap ? "wrap" : null },
        c.render(row))))))));
}

/** Text with `backticked` spans shown as code. */
export function rich(text) {
  return text.split("`").map((part, i) => (i % 2 ? h("code", null, part) : part));
}

export function emptyState(title, text, code) {
  return h("div", { class: "empty" }, h("h3", null, title),
    text ? h("p", null, rich(text)) : null, code ? h("pre", null, code) : null);
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", null, title) : null, ...children);
}

export function pageHead(title, sub, ...right) {
  return h("div", { class: "page-head" },
    h("div", null, h("h1", null, title), sub ? h("p", { class: "sub" }, sub) : null),
    right.length ? h("div", { class: "toolbar" }, right) : null);
}

export function stat(label, value, detail, tone) {
  return h("div", { class: `card stat${tone ? ` ${tone}` : ""}` },
    h("span", { class: "label" }, label), h("span", { class: "value" }, value),
    detail ? h("span", { class: "detail" }, detail) : null);
}

/** "Showing 1-50 of 1,234" with previous/next buttons; onPage(offset). */
export function pager(offset, limit, matched, onPage) {
  if (matched <= limit && offset === 0) return null;
  const last = Math.min(offset + limit, matched);
  return h("div", { class: "pager" },
    h("span", null, matched ? `${fmt.number(offset + 1)}–${fmt.number(last)} of ${fmt.number(matched)}`
      : "none"),
    h("span", { class: "buttons" },
      h("button", { class: "button", type: "button", disabled: offset === 0,
        onclick: () => onPage(Math.max(0, offset - limit)) }, "← Newer"),
      h("button", { class: "button", type: "button", disabled: last >= matched,
        onclick: () => onPage(offset + limit) }, "Older →")));
}

/** Filter chips: [{value, label, count}]; the one equal to `current` is on. */
export function chips(options, current, onPick) {
  return h("div", { class: "chips", role: "group" }, options.map((o) =>
    h("button", {
      type: "button", class: `chip${o.value === current ? " on" : ""}`,
      "aria-pressed": String(o.value === current), dataset: { value: o.value },
      onclick: () => onPick(o.value),
    }, o.label, o.count !== undefined ? h("span", { class: "count" }, fmt.number(o.count)) : null)));
}

export function info(pairs) {
  return h("dl", { class: "info" }, pairs.filter(Boolean).map(([k, v]) =>
    [h("dt", null, k), h("dd", null, v === null || v === undefined || v === "" ? "–" : v)]));
}

/** A row of state changes: [{state, created_ms}]. */
export function timeline(events) {
  if (!events || !events.length) return h("span", { class: "muted" }, "–");
  return h("ol", { class: "timeline" }, events.map((e) =>
    h("li", null, badge(e.state), h("time", { class: "muted", title: fmt.dateTime(e.created_ms) },
      fmt.clock(e.created_ms)))));
}

/** Colour-coded share of each state: a stacked bar and its legend with links. */
export function stateStack(counts, order, linkOf) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const states = [...order.filter((s) => counts[s]), ...Object.keys(counts)
    .filter((s) => !order.includes(s) && counts[s])];
  const stack = h("div", { class: "stack" }, states.map((s) => {
    const part = h("span", { class: `fill-${colourOf(s)}`, title: `${s}: ${counts[s]}` });
    part.style.width = `${(100 * counts[s]) / total}%`;
    return part;
  }));
  const legend = h("div", { class: "legend" }, states.map((s) => {
    const inner = [h("span", { class: `swatch fill-${colourOf(s)}` }), `${s} `,
      h("strong", null, fmt.number(counts[s]))];
    return linkOf ? h("a", { href: linkOf(s) }, inner) : h("span", null, inner);
  }));
  return [total ? stack : null, legend];
}

/** Which job, actor or node a list is narrowed to: the query keys a link may set. */
export const SCOPES = [["job_id", "job"], ["actor_id", "actor"], ["node_id", "node"]];

/** A chip per scope the query sets (among `keys`); clicking one drops it. */
export function scopeChips(query, setQuery, keys = SCOPES.map(([key]) => key)) {
  return h("div", { class: "chips" }, SCOPES.filter(([key]) => keys.includes(key) && query.get(key))
    .map(([key, label]) => h("button", {
      type: "button", class: "chip on", title: "Remove this filter",
      onclick: () => setQuery({ [key]: null, offset: null }),
    }, `${label} ${fmt.shortId(query.get(key))} ×`)));
}

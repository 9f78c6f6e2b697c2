// The login page: the token from the form, or from the link `raggio dashboard` prints
// (/login#token=...). The fragment never reaches the server and is dropped from the
// history at once; the token is posted to /login, which sets the session cookie.

import { fill, rich } from "./dom.js";

const form = document.getElementById("login");
const input = document.getElementById("token");
const error = document.getElementById("error");
const button = document.getElementById("submit");

/** A page of this site that `next` names, else "/". Resolved as the browser would: it
 * reads `/\host` and `/<tab>/host` as `//host`, another site, whatever the text starts with. */
function sameOrigin(next) {
  try {
    const url = new URL(next, location.origin);
    if (url.origin === location.origin) return url.pathname + url.search + url.hash;
  } catch {
    // not a URL at all
  }
  return "/";
}

/** Where to go once logged in: ?next= if it is a page of this site, with its #route. */
function destination() {
  const safe = sameOrigin(new URLSearchParams(location.search).get("next") || "/");
  const route = location.hash.startsWith("#/") ? location.hash : "";
  return route && !safe.includes("#") ? safe + route : safe;
}

async function logIn(token) {
  error.hidden = true;
  button.disabled = true;
  try {
    const response = await fetch("/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
    });
    if (response.ok) {
      location.replace(destination());
      return;
    }
    const body = await response.json().catch(() => ({}));
    fill(error, rich(body.message || `Logging in failed (${response.status}).`));
  } catch {
    error.textContent = "The dashboard does not answer; is the cluster running?";
  }
  error.hidden = false;
  button.disabled = false;
  input.select();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  logIn(input.value.trim());
});

const fromLink = location.hash.match(/^#token=([^&]+)/);
if (fromLink) {
  const url = new URL(location.href);
  url.hash = "";
  history.replaceState(null, "", url.pathname + url.search);
  logIn(decodeURIComponent(fromLink[1]));
}

// The login page: the token from the form, or from the link `raggio dashboard` prints
// (/login#token=...). The fragment never reaches the server and is dropped from the
// history at once; the token is posted to /login, which sets the session cookie.

import { fill, rich } from "./dom.js";

const form = document.getElementById("login");
const input = document.getElementById("token");
const error = document.getElementById("error");
const button = document.getElementById("submit");

/** Where to go once logged in: ?next= if it is a path of this site, with its #route. */
function destination() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  const safe = next.startsWith("/") && !next.startsWith("//") ? next : "/";
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

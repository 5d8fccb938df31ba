// What every studio page shares: requests that carry the CSRF token, one-line messages, path encoding.
"use strict";

window.studio = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  // an API answer, or an Error whose message is the server's one line
  async function answer(r) {
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    return body;
  }

  async function getJSON(url) {
    return answer(await fetch(url, { headers: { Accept: "application/json" } }));
  }

  // every state-changing request carries this session's CSRF token (the server refuses it otherwise)
  async function post(url, body) {
    return answer(
      await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      }),
    );
  }

  let timer = null;
  function message(text, kind = "info") {
    const el = document.getElementById("message");
    el.textContent = text;
    el.className = `message ${kind}`;
    el.hidden = !text;
    clearTimeout(timer);
    if (text && kind !== "error") timer = setTimeout(() => (el.hidden = true), 4000);
  }

  // a workspace path for a URL: each '/'-separated part encoded
  function encPath(...parts) {
    return parts
      .filter((p) => p !== "")
      .join("/")
      .split("/")
      .map(encodeURIComponent)
      .join("/");
  }

  return { getJSON, post, message, encPath };
})();

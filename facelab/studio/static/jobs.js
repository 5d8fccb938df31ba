// Jobs page: start a training job, list the jobs, follow one (progress, preview, loss curves, log) over SSE.
"use strict";

(() => {
  const { getJSON, post, message } = window.studio;
  const $ = (id) => document.getElementById(id);
  let current = null;
  let events = null;

  async function list() {
    const { jobs } = await getJSON("/api/jobs");
    const ul = $("job-list");
    ul.replaceChildren(
      ...jobs.map((j) => {
        const li = document.createElement("li");
        li.dataset.id = j.id;
        li.dataset.testid = "job-item";
        li.setAttribute("data-testid", "job-item");
        li.textContent = `${j.command} ${j.args.model || j.args.output || j.args.out || ""} · ${j.status} · ${j.id}`;
        li.classList.toggle("current", j.id === current);
        li.addEventListener("click", () => open(j.id));
        return li;
      }),
    );
  }

  function show(job) {
    $("job-view").hidden = false;
    $("job-title").textContent = `${job.command} · ${job.id}`;
    $("job-status").textContent = job.status + (job.returncode != null ? ` (return code ${job.returncode})` : "");
    $("job-status").dataset.status = job.status;
    $("job-stop").disabled = job.status !== "running";
    $("job-resume").disabled = job.status === "running";
    const p = job.progress;
    let text = "";
    if (p.done != null) {
      text = `${p.done}/${p.total}`;
      $("job-bar").max = p.total || 1;
      $("job-bar").value = p.done;
    }
    if (p.iteration != null) text += ` · iteration ${p.iteration}${p.target ? "/" + p.target : ""}`;
    $("job-progress").textContent = text || "starting…";
    $("job-progress").dataset.done = p.done ?? "";
    $("job-progress").dataset.total = p.total ?? "";
    for (const [id, name] of [["preview", "preview.png"], ["losses", "losses.png"]]) {
      const img = $(id);
      const version = job.images[name];
      if (version && img.dataset.version !== version) {
        img.dataset.version = version;
        img.src = `/api/jobs/${job.id}/image/${name}?v=${encodeURIComponent(version)}`;
        img.hidden = false;
      }
    }
    const log = $("job-log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = job.log;
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  async function open(id) {
    current = id;
    history.replaceState(null, "", `/jobs?job=${encodeURIComponent(id)}`);
    if (events) events.close();
    for (const img of [$("preview"), $("losses")]) {
      img.hidden = true;
      delete img.dataset.version;
    }
    try {
      show(await getJSON(`/api/jobs/${id}`));
    } catch (e) {
      message(e.message, "error");
      return;
    }
    events = new EventSource(`/api/jobs/${id}/events`);
    let lastStatus = null;
    events.addEventListener("changed", (e) => {
      const job = JSON.parse(JSON.parse(e.data));
      if (job.id !== current) return;
      show(job);
      if (job.status !== lastStatus) {
        lastStatus = job.status;
        list();
      }
    });
    list();
  }

  $("train-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const args = { src: [f.get("src")], dst: f.get("dst"), model: f.get("model"), iters: Number(f.get("iters")) };
    if (f.get("preset")) args.preset = f.get("preset");
    for (const pair of String(f.get("options") || "").split(/\s+/).filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at < 1) {
        message(`${pair}: write options as name=value`, "error");
        return;
      }
      const name = pair.slice(0, at).replace(/^-+/, "").replace(/-/g, "_");
      const value = pair.slice(at + 1);
      args[name] = value === "true" ? true : value === "false" ? false : value;
    }
    try {
      const job = await post("/api/jobs", { command: "train", args });
      message(`started job ${job.id}`);
      open(job.id);
    } catch (err) {
      message(err.message, "error");
    }
  });

  $("job-stop").addEventListener("click", async () => {
    try {
      await post(`/api/jobs/${current}/stop`, {});
      message("stopping (the model is saved first)");
    } catch (err) {
      message(err.message, "error");
    }
  });
  $("job-resume").addEventListener("click", async () => {
    try {
      await post(`/api/jobs/${current}/resume`, {});
      open(current);
    } catch (err) {
      message(err.message, "error");
    }
  });
  window.addEventListener("pagehide", () => events && events.close());

  const wanted = new URLSearchParams(location.search).get("job");
  if (wanted) open(wanted);
  else list();
})();

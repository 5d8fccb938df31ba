// Jobs page: start a job (extract, train, mask train, merge, evaluate), list the jobs, follow one (progress, preview, loss curves, log) over SSE.
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

  // The start form: one command's fields at a time, built from the server's description (jobs.py's FORMS).
  const forms = JSON.parse($("job-forms").textContent);

  function field(f) {
    const label = document.createElement("label");
    label.append(f.label + " ");
    let input;
    if (f.input === "select") {
      input = document.createElement("select");
      for (const c of f.choices) input.append(new Option(c || "(default)", c));
    } else {
      input = document.createElement("input");
      input.type = f.input === "bool" ? "checkbox" : f.input === "int" || f.input === "float" ? "number" : "text";
      if (f.input === "int") input.min = "1";
      if (f.input === "float") input.step = "any";
      if (f.suggest) input.setAttribute("list", f.suggest);
      if (f.input !== "bool") input.size = 18;
      input.placeholder = f.placeholder || "";
    }
    input.name = f.name;
    input.required = f.required;
    input.dataset.input = f.input;
    input.setAttribute("data-testid", `job-${f.name.replace(/_/g, "-")}`);
    if (f.input === "bool") input.checked = Boolean(f.value);
    else if (f.value != null) input.value = String(f.value);
    label.append(input);
    return label;
  }

  function showForm(command) {
    const form = forms[command];
    $("job-fields").replaceChildren(...form.fields.map(field));
    $("job-form").elements.options.placeholder = form.example;
  }

  function value(input) {
    if (input.dataset.input === "bool") return input.checked;
    const text = input.value.trim();
    if (text === "") return null;
    if (input.dataset.input === "int" || input.dataset.input === "float") return Number(text);
    if (input.dataset.input === "list") return text.split(",").map((s) => s.trim()).filter(Boolean);
    return text;
  }

  $("job-command").addEventListener("change", (e) => showForm(e.target.value));
  showForm($("job-command").value);

  $("job-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const command = $("job-command").value;
    const args = {};
    for (const input of $("job-fields").querySelectorAll("[name]")) {
      const v = value(input);
      if (v !== null) args[input.name] = v;
    }
    for (const pair of String(e.target.elements.options.value || "").split(/\s+/).filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at < 1) {
        message(`${pair}: write options as name=value`, "error");
        return;
      }
      const name = pair.slice(0, at).replace(/^-+/, "").replace(/-/g, "_");
      const v = pair.slice(at + 1);
      args[name] = v === "true" ? true : v === "false" ? false : v;
    }
    try {
      const job = await post("/api/jobs", { command, args });
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

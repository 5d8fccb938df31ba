// A faceset's grid: only the tiles on screen (plus two rows) exist in the page, so 10 000 faces scroll like 50.
// The listing comes from /api/faces (sorted and filtered by the server); thumbnails from /thumb/ (cached on disk).
"use strict";

(() => {
  const app = document.getElementById("grid-app");
  if (!app) return;
  const faceset = app.dataset.faceset;
  const grid = document.getElementById("grid");
  const spacer = document.getElementById("spacer");
  const panel = document.getElementById("panel");
  const form = document.getElementById("controls");
  const trashButton = document.getElementById("trash");
  const CELL = 136; // px: a 128 px tile and its gap (studio.css .tile)

  let list = { names: [], versions: [], broken: [], synthetic: [], key: [], total: 0 };
  let index = new Map(); // name -> position in list
  let cols = 1;
  let cursor = -1; // the face the keyboard is on
  let anchor = -1; // where a shift-selection starts
  const selected = new Set(); // names
  const tiles = new Map(); // position -> element, for the positions on screen
  const undo = []; // trash batches of this page, newest last: {batch, names}
  let loading = 0;
  let panelFor = null;

  // --- listing ---------------------------------------------------------------------------------------------------

  function params() {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== "" && !(k === "sort" && v === "name")) p.set(k, v);
    if (p.get("synthetic") === "all") p.delete("synthetic");
    if (p.get("sort") !== "identity") p.delete("photo");
    return p;
  }

  async function load(keep) {
    const seq = ++loading;
    const p = params();
    history.replaceState(null, "", p.toString() ? `?${p}` : location.pathname);
    p.set("faceset", faceset);
    document.body.classList.add("busy");
    // a first visit reads every face once (the studio keeps an index after that); say so if it takes a while
    const slow = setTimeout(() => studio.message("reading the faceset (the first visit indexes every face)…"), 500);
    let r;
    try {
      r = await studio.getJSON(`/api/faces?${p}`);
    } catch (e) {
      if (seq === loading) studio.message(e.message, "error");
      return;
    } finally {
      clearTimeout(slow);
      if (seq === loading) document.body.classList.remove("busy");
    }
    if (document.getElementById("message").textContent.startsWith("reading the faceset")) studio.message("");
    if (seq !== loading) return; // a newer request is on its way
    list = r;
    index = new Map(list.names.map((n, i) => [n, i]));
    for (const n of [...selected]) if (!index.has(n)) selected.delete(n);
    const keepAt = keep !== undefined && index.has(keep) ? index.get(keep) : Math.min(cursor, list.names.length - 1);
    cursor = list.names.length ? Math.max(0, keepAt) : -1;
    const broken = list.broken.filter((b) => b !== null).length;
    document.getElementById("count").textContent =
      `${list.names.length} of ${list.total} faces` + (broken ? ` (${broken} broken)` : "");
    layout(true);
  }

  // --- drawing ---------------------------------------------------------------------------------------------------

  function layout(force) {
    const was = cols;
    cols = Math.max(1, Math.floor(grid.clientWidth / CELL));
    spacer.style.height = `${Math.ceil(list.names.length / cols) * CELL}px`;
    draw(force || was !== cols);
  }

  function draw(force) {
    if (force) {
      for (const el of tiles.values()) el.remove();
      tiles.clear();
    }
    const top = grid.scrollTop;
    const r0 = Math.max(0, Math.floor(top / CELL) - 2);
    const r1 = Math.ceil((top + grid.clientHeight) / CELL) + 2;
    const first = r0 * cols;
    const last = Math.min(list.names.length - 1, (r1 + 1) * cols - 1);
    for (const [i, el] of tiles) {
      if (i < first || i > last) {
        el.remove();
        tiles.delete(i);
      }
    }
    const frag = document.createDocumentFragment();
    for (let i = first; i <= last; i++) if (!tiles.has(i)) frag.append(makeTile(i));
    grid.append(frag);
    updateMarks();
  }

  function makeTile(i) {
    const name = list.names[i];
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.testid = "face-tile";
    el.dataset.index = i;
    el.dataset.name = name;
    el.style.left = `${(i % cols) * CELL}px`;
    el.style.top = `${Math.floor(i / cols) * CELL}px`;
    el.title = name;
    if (list.broken[i] !== null) {
      markBroken(el, list.broken[i]);
    } else {
      const img = document.createElement("img");
      img.alt = name;
      img.decoding = "async";
      img.draggable = false;
      const y = Math.floor(i / cols) * CELL; // tiles on screen first, the rows kept above and below after them
      img.fetchPriority = y < grid.scrollTop + grid.clientHeight && y + CELL > grid.scrollTop ? "high" : "low";
      img.src = `/thumb/${studio.encPath(faceset, name)}?v=${list.versions[i]}`;
      img.addEventListener("error", () => markBroken(el, "image data does not decode"));
      el.append(img);
      if (list.synthetic[i]) el.append(badge("syn", "syn"));
      if (list.key[i] !== null) el.append(badge(String(list.key[i]), "key"));
    }
    tiles.set(i, el);
    return el;
  }

  function markBroken(el, why) {
    el.classList.add("broken");
    el.title = `${el.dataset.name}: ${why}`;
    el.replaceChildren(badge("broken", "broken-label"), badge(el.dataset.name, "name"));
  }

  function badge(text, cls) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function updateMarks() {
    for (const [i, el] of tiles) {
      el.classList.toggle("selected", selected.has(list.names[i]));
      el.classList.toggle("cursor", i === cursor);
    }
    trashButton.disabled = selected.size === 0;
    document.getElementById("selection").textContent = selected.size ? `${selected.size} selected` : "";
  }

  function scrollToCursor() {
    if (cursor < 0) return;
    const y = Math.floor(cursor / cols) * CELL;
    if (y < grid.scrollTop) grid.scrollTop = y;
    else if (y + CELL > grid.scrollTop + grid.clientHeight) grid.scrollTop = y + CELL - grid.clientHeight;
    draw(false);
  }

  // --- selection and keys ----------------------------------------------------------------------------------------

  function moveTo(i, extend) {
    if (!list.names.length) return;
    cursor = Math.max(0, Math.min(list.names.length - 1, i));
    if (extend) selectRange(anchor < 0 ? cursor : anchor, cursor);
    else anchor = cursor;
    scrollToCursor();
    if (!panel.hidden) openPanel(cursor);
  }

  function selectRange(a, b) {
    selected.clear();
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) selected.add(list.names[i]);
    updateMarks();
  }

  function toggle(i) {
    const n = list.names[i];
    if (selected.has(n)) selected.delete(n);
    else selected.add(n);
    updateMarks();
  }

  grid.addEventListener("click", (ev) => {
    const el = ev.target.closest(".tile");
    if (!el) return;
    const i = Number(el.dataset.index);
    if (ev.shiftKey && anchor >= 0) selectRange(anchor, i);
    else if (ev.ctrlKey || ev.metaKey) toggle(i);
    else {
      selected.clear();
      selected.add(list.names[i]);
      anchor = i;
    }
    cursor = i;
    updateMarks();
    grid.focus({ preventScroll: true });
    if (!panel.hidden) openPanel(i);
  });
  grid.addEventListener("dblclick", (ev) => {
    const el = ev.target.closest(".tile");
    if (el) openPanel(Number(el.dataset.index));
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea")) return;
    const page = Math.max(1, Math.floor(grid.clientHeight / CELL)) * cols;
    const steps = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols, PageUp: -page, PageDown: page };
    if (ev.key in steps) moveTo(cursor + steps[ev.key], ev.shiftKey);
    else if (ev.key === "Home") moveTo(0, ev.shiftKey);
    else if (ev.key === "End") moveTo(list.names.length - 1, ev.shiftKey);
    else if (ev.key === " " && cursor >= 0) toggle(cursor);
    else if (ev.key === "Enter" && cursor >= 0) openPanel(cursor);
    else if (ev.key === "Delete" || ev.key === "Backspace") trash();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") restoreLast();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "a") selectRange(0, list.names.length - 1);
    else if (ev.key === "Escape") {
      if (!panel.hidden) closePanel();
      else {
        selected.clear();
        updateMarks();
      }
    } else return;
    ev.preventDefault();
  });

  // --- trash and undo --------------------------------------------------------------------------------------------

  async function trash() {
    const names = selected.size ? [...selected] : cursor >= 0 ? [list.names[cursor]] : [];
    if (!names.length) return;
    trashButton.disabled = true;
    try {
      const r = await studio.post("/api/trash", { faceset, names });
      undo.push({ batch: r.batch, names: r.names });
      selected.clear();
      showUndo();
      const next = list.names.slice(cursor).find((n) => !r.names.includes(n));
      await load(next);
    } catch (e) {
      studio.message(e.message, "error");
      updateMarks();
    }
  }

  async function restoreLast() {
    const last = undo[undo.length - 1];
    if (!last) return;
    try {
      const r = await studio.post("/api/restore", { faceset, batch: last.batch });
      undo.pop();
      showUndo();
      for (const n of r.restored) selected.add(n);
      studio.message(`restored ${r.restored.length} face${r.restored.length === 1 ? "" : "s"}`);
      await load(r.restored[0]);
      scrollToCursor();
    } catch (e) {
      studio.message(e.message, "error");
    }
  }

  function showUndo() {
    const last = undo[undo.length - 1];
    document.getElementById("undo").hidden = !last;
    if (last) {
      const n = last.names.length;
      document.getElementById("undo-text").textContent = `moved ${n} face${n === 1 ? "" : "s"} to the trash`;
    }
  }

  trashButton.addEventListener("click", trash);
  document.getElementById("restore").addEventListener("click", restoreLast);

  // --- face panel ------------------------------------------------------------------------------------------------

  async function openPanel(i) {
    const name = list.names[i];
    if (name === undefined) return;
    panelFor = name;
    panel.hidden = false;
    layout(false);
    let info;
    try {
      info = await studio.getJSON(`/api/face?${new URLSearchParams({ faceset, name })}`);
    } catch (e) {
      info = { name, broken: e.message };
    }
    if (panelFor === name) renderPanel(info);
  }

  function closePanel() {
    panel.hidden = true;
    panelFor = null;
    layout(false);
    grid.focus({ preventScroll: true });
  }

  const SVG = "http://www.w3.org/2000/svg";
  const layers = { landmarks: true, masks: true, xseg: false };

  function renderPanel(info) {
    const head = document.createElement("div");
    head.className = "panel-head";
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.title = "close (Esc)";
    close.addEventListener("click", closePanel);
    head.append(badge(info.name, "panel-name"), close);
    const parts = [head];
    if (info.broken) {
      parts.push(badge(`broken: ${info.broken}`, "panel-broken"));
      panel.replaceChildren(...parts);
      return;
    }
    const m = info.meta;
    const stage = document.createElement("div");
    stage.className = "stage";
    const img = document.createElement("img");
    img.src = `/file/${studio.encPath(info.path)}`;
    img.alt = info.name;
    stage.append(img);
    if (m.has_xseg) {
      const x = document.createElement("img");
      x.className = "layer xseg";
      x.src = `/xseg/${studio.encPath(info.path)}`;
      x.alt = "stored mask";
      stage.append(x);
    }
    stage.append(overlay(m));
    const toggles = document.createElement("div");
    toggles.className = "layers";
    const counts = { landmarks: m.landmarks.length, masks: m.masks.length, xseg: m.has_xseg ? 1 : 0 };
    for (const k of Object.keys(layers)) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = layers[k];
      box.disabled = !counts[k];
      box.addEventListener("change", () => {
        layers[k] = box.checked;
        stage.classList.toggle(`hide-${k}`, !box.checked);
      });
      stage.classList.toggle(`hide-${k}`, !layers[k]);
      label.append(box, ` ${k === "xseg" ? "stored mask" : k} (${counts[k]})`);
      toggles.append(label);
    }
    const actions = document.createElement("div");
    actions.className = "panel-actions";
    const edit = document.createElement("a");
    edit.href = `/masks/${studio.encPath(info.path)}?${params()}`; // the editor's previous/next: this grid's order
    edit.textContent = "edit mask polygons";
    edit.dataset.testid = "mask-editor-link";
    actions.append(edit);
    parts.push(stage, toggles, actions, metaTable(info, m));
    panel.replaceChildren(...parts);
  }

  // landmarks and the include/exclude polygons, in the face's own (aligned) pixels
  function overlay(m) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${m.size} ${m.size}`);
    svg.classList.add("layer");
    const r = Math.max(1, m.size / 160);
    const lm = document.createElementNS(SVG, "g");
    lm.classList.add("landmarks");
    for (const [x, y] of m.landmarks) {
      const c = document.createElementNS(SVG, "circle");
      c.setAttribute("cx", x);
      c.setAttribute("cy", y);
      c.setAttribute("r", r);
      lm.append(c);
    }
    const masks = document.createElementNS(SVG, "g");
    masks.classList.add("masks");
    for (const poly of m.masks) {
      const p = document.createElementNS(SVG, "polygon");
      p.setAttribute("points", (poly.points || []).map((pt) => pt.join(",")).join(" "));
      p.classList.add(poly.type === "exclude" ? "exclude" : "include");
      masks.append(p);
    }
    svg.append(masks, lm);
    return svg;
  }

  function metaTable(info, m) {
    const rows = [
      ["file", `${info.path} (${(info.bytes / 1024).toFixed(1)} KiB)`],
      ["face type", `${m.face_type}, ${m.size} px`],
      ["source", `${m.source_file}` + (m.frame_index !== null ? ` frame ${m.frame_index}` : "")],
      ["time", m.timestamp !== null ? `${m.timestamp.toFixed(3)} s` : "-"],
      ["yaw / pitch / roll", `${m.yaw.toFixed(1)} / ${m.pitch.toFixed(1)} / ${m.roll.toFixed(1)} deg`],
      ["blur (sharpness)", m.blur.toFixed(1)],
      ["detector", `${m.detector} (${m.detector_score.toFixed(2)})`],
      ["landmarks", m.landmarker],
      ["mesh points", String(m.mesh_points)],
      ["mask polygons", String(m.masks.length)],
      ["stored mask", m.has_xseg ? "yes" : "no"],
      ["synthetic", m.synthetic ? "yes" : "no"],
    ];
    for (const [k, v] of Object.entries(m.extra || {})) rows.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
    const table = document.createElement("table");
    table.className = "meta";
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = v;
    }
    return table;
  }

  // --- wiring ----------------------------------------------------------------------------------------------------

  function syncPhoto() {
    form.querySelector(".photo").hidden = form.elements.sort.value !== "identity";
  }

  for (const [k, v] of new URLSearchParams(location.search)) {
    const field = form.elements[k];
    if (!field) continue;
    if (field.type === "checkbox") field.checked = v === "1" || v === "true";
    else field.value = v;
  }
  syncPhoto();
  form.addEventListener("change", () => {
    syncPhoto();
    load(list.names[cursor]);
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());

  let frame = 0;
  grid.addEventListener("scroll", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => draw(false));
  });
  new ResizeObserver(() => layout(false)).observe(grid);

  // the folder changed on disk (a CLI sort, an extraction, another window): list it again
  const events = new EventSource(`/api/events?${new URLSearchParams({ faceset })}`);
  let again = 0;
  events.addEventListener("changed", () => {
    clearTimeout(again);
    again = setTimeout(() => load(list.names[cursor]), 300);
  });
  window.addEventListener("pagehide", () => events.close());

  grid.focus({ preventScroll: true });
  load();
})();

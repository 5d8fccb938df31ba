// The mask editor: include (green) and exclude (red) polygons drawn on one face in its own aligned pixels, with
// DFL's XSeg editor keys; saved into the face's metadata by POST /api/masks. The page's query string is the grid's
// sort and filters, so previous/next follow the grid's order (/api/masks/neighbors).
"use strict";

(() => {
  const app = document.getElementById("mask-app");
  if (!app) return;
  const canvas = document.getElementById("canvas");
  const stage = document.getElementById("stage");
  const ctx = canvas.getContext("2d");
  const grid = new URLSearchParams(location.search); // the grid's sort and filters
  const HIT = 8; // css px: how near a point the mouse must be to drag it
  const COLORS = { include: [95, 211, 141], exclude: [255, 107, 107] };

  let face = app.dataset.face;
  let info = null; // /api/masks answer for `face`
  let image = null; // the face, decoded
  let xseg = null; // the stored mask as a tinted canvas, or null
  let polys = []; // [{type, points: [[x, y], ...]}]
  let drawing = null; // the open polygon: {type, points}
  let mode = "include";
  let saved = "[]"; // JSON of the polygons on disk
  let undo = [];
  let redo = [];
  let scale = 1; // css px per image px
  let mouse = null; // [x, y] in image px
  let drag = null; // {p, i, moved}
  let neighbors = { prev: null, next: null };
  let busy = false;

  // --- loading ---------------------------------------------------------------------------------------------------

  function apiURL(path, extra) {
    const p = new URLSearchParams(grid);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return `${path}?${p}`;
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => reject(new Error(`${src}: image does not decode`));
      im.src = src;
    });
  }

  async function open(rel) {
    busy = true;
    try {
      const i = await studio.getJSON(`/api/masks?${new URLSearchParams({ face: rel })}`);
      const v = encodeURIComponent(i.version);
      const im = await loadImage(`/file/${studio.encPath(i.face)}?v=${v}`);
      face = i.face;
      info = i;
      image = im;
      xseg = null;
      polys = clone(i.masks);
      saved = JSON.stringify(polys);
      drawing = null;
      undo = [];
      redo = [];
      drag = null;
      app.dataset.face = face;
      document.getElementById("face-name").textContent = i.name;
      document.title = document.title.replace(/^masks · [^·]*/, `masks · ${i.name} `);
      const q = grid.toString();
      history.replaceState(null, "", `/masks/${studio.encPath(face)}${q ? `?${q}` : ""}`);
      document.getElementById("back").href = `/faceset/${studio.encPath(i.faceset)}${q ? `?${q}` : ""}`;
      const box = document.getElementById("show-xseg");
      box.disabled = !i.has_xseg;
      box.parentElement.title = i.has_xseg ? "" : "this face has no stored mask ('facelab mask apply')";
      if (i.has_xseg) loadXseg(i, v);
      fit();
      changed();
      neighbors = await studio.getJSON(apiURL("/api/masks/neighbors", { face }));
      document.getElementById("position").textContent =
        neighbors.index >= 0 ? `${neighbors.index + 1} of ${neighbors.count}` : "not in the grid's view";
      document.getElementById("prev").disabled = !neighbors.prev;
      document.getElementById("next").disabled = !neighbors.next;
      document.getElementById("copy-prev").disabled = !neighbors.prev;
      app.dataset.ready = face; // for tests: this face is loaded
    } catch (e) {
      studio.message(e.message, "error");
    } finally {
      busy = false;
    }
  }

  // the stored mask, drawn as a dark veil over what it leaves out
  async function loadXseg(i, v) {
    let im;
    try {
      im = await loadImage(`/xseg/${studio.encPath(i.face)}?v=${v}`);
    } catch (e) {
      return;
    }
    if (info !== i) return;
    const c = document.createElement("canvas");
    c.width = i.width;
    c.height = i.height;
    const g = c.getContext("2d");
    g.drawImage(im, 0, 0, i.width, i.height);
    const d = g.getImageData(0, 0, i.width, i.height);
    for (let k = 0; k < d.data.length; k += 4) {
      const a = 255 - d.data[k];
      d.data[k] = 10;
      d.data[k + 1] = 20;
      d.data[k + 2] = 60;
      d.data[k + 3] = a * 0.7;
    }
    g.putImageData(d, 0, 0);
    xseg = c;
    draw();
  }

  // --- drawing ---------------------------------------------------------------------------------------------------

  function fit() {
    if (!info) return;
    const w = stage.clientWidth - 16;
    const h = stage.clientHeight - 16;
    scale = Math.max(0.05, Math.min(w / info.width, h / info.height));
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${Math.round(info.width * scale)}px`;
    canvas.style.height = `${Math.round(info.height * scale)}px`;
    canvas.width = Math.round(info.width * scale * dpr);
    canvas.height = Math.round(info.height * scale * dpr);
    draw();
  }

  function rgba(type, a) {
    return `rgba(${COLORS[type].join(",")},${a})`;
  }

  function path(points, closed) {
    ctx.beginPath();
    points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (closed) ctx.closePath();
  }

  function draw() {
    if (!info || !image) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(scale * dpr, 0, 0, scale * dpr, 0, 0); // image px from here on
    ctx.imageSmoothingEnabled = scale < 1;
    ctx.drawImage(image, 0, 0, info.width, info.height);
    if (xseg && document.getElementById("show-xseg").checked) ctx.drawImage(xseg, 0, 0);
    const px = 1 / scale; // one css px
    const hover = hovered();
    for (const type of ["include", "exclude"]) {
      polys.forEach((p, k) => {
        if (p.type !== type) return;
        path(p.points, true);
        ctx.fillStyle = rgba(type, k === hover ? 0.4 : 0.25);
        ctx.fill();
        ctx.lineWidth = (k === hover ? 2.5 : 1.5) * px;
        ctx.strokeStyle = rgba(type, 0.95);
        ctx.stroke();
        dots(p.points, rgba(type, 1), 2.5 * px);
      });
    }
    if (drawing) {
      const pts = mouse ? [...drawing.points, mouse] : drawing.points;
      path(pts, false);
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = rgba(drawing.type, 1);
      ctx.setLineDash([4 * px, 3 * px]);
      ctx.stroke();
      ctx.setLineDash([]);
      dots(drawing.points, rgba(drawing.type, 1), 3 * px);
      if (drawing.points.length) dots([drawing.points[0]], "#fff", 4 * px);
    }
  }

  function dots(points, color, r) {
    ctx.fillStyle = color;
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  // --- editing ---------------------------------------------------------------------------------------------------

  function clone(v) {
    return JSON.parse(JSON.stringify(v));
  }

  function snapshot() {
    return JSON.stringify({ polys, drawing });
  }

  function remember() {
    undo.push(snapshot());
    if (undo.length > 500) undo.shift();
    redo = [];
  }

  function restore(s) {
    const v = JSON.parse(s);
    polys = v.polys;
    drawing = v.drawing;
    changed();
  }

  function changed() {
    const dirty = isDirty();
    const el = document.getElementById("dirty");
    el.textContent = dirty ? "unsaved changes" : "saved";
    el.classList.toggle("unsaved", dirty);
    document.getElementById("mode-include").classList.toggle("on", mode === "include");
    document.getElementById("mode-exclude").classList.toggle("on", mode === "exclude");
    document.getElementById("undo").disabled = !undo.length;
    document.getElementById("redo").disabled = !redo.length;
    document.getElementById("close-poly").disabled = !(drawing && drawing.points.length >= 3);
    app.dataset.polygons = String(polys.length);
    app.dataset.mode = mode;
    draw();
  }

  function isDirty() {
    return JSON.stringify(polys) !== saved || !!(drawing && drawing.points.length);
  }

  function toImage(ev) {
    const r = canvas.getBoundingClientRect();
    const x = ((ev.clientX - r.left) / r.width) * info.width;
    const y = ((ev.clientY - r.top) / r.height) * info.height;
    return [clamp(x, 0, info.width), clamp(y, 0, info.height)];
  }

  function clamp(v, lo, hi) {
    return Math.round(Math.min(hi, Math.max(lo, v)) * 100) / 100;
  }

  function vertexAt(pt) {
    const r = HIT / scale;
    for (let p = polys.length - 1; p >= 0; p--) {
      const i = polys[p].points.findIndex(([x, y]) => Math.hypot(x - pt[0], y - pt[1]) <= r);
      if (i >= 0) return { p, i };
    }
    return null;
  }

  function inside(points, [x, y]) {
    let ins = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i];
      const [xj, yj] = points[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) ins = !ins;
    }
    return ins;
  }

  function hovered() {
    if (!mouse || drawing) return -1;
    for (let p = polys.length - 1; p >= 0; p--) if (inside(polys[p].points, mouse)) return p;
    return -1;
  }

  function addPoint(pt) {
    remember();
    if (!drawing) drawing = { type: mode, points: [] };
    drawing.points.push(pt);
    changed();
  }

  function closePolygon() {
    if (!drawing) return;
    if (drawing.points.length < 3) {
      studio.message("a polygon needs at least 3 points", "error");
      return;
    }
    remember();
    polys.push(drawing);
    drawing = null;
    changed();
  }

  function setMode(m) {
    mode = m;
    if (drawing && drawing.type !== m) {
      remember();
      drawing.type = m;
    }
    changed();
  }

  function undoStep() {
    if (!undo.length) return;
    redo.push(snapshot());
    restore(undo.pop());
  }

  function redoStep() {
    if (!redo.length) return;
    undo.push(snapshot());
    restore(redo.pop());
  }

  function removePolygon() {
    if (!polys.length) return;
    const k = hovered();
    remember();
    polys.splice(k >= 0 ? k : polys.length - 1, 1);
    changed();
  }

  function clearAll() {
    if (!polys.length && !drawing) return;
    remember();
    polys = [];
    drawing = null;
    changed();
  }

  async function copyPrevious() {
    if (!neighbors.prev) {
      studio.message("no previous face in the grid's order", "error");
      return;
    }
    let prev;
    try {
      prev = await studio.getJSON(`/api/masks?${new URLSearchParams({ face: neighbors.prev })}`);
    } catch (e) {
      studio.message(e.message, "error");
      return;
    }
    if (!prev.masks.length) {
      studio.message(`${prev.name} has no polygons to copy`, "error");
      return;
    }
    const sx = info.width / prev.width;
    const sy = info.height / prev.height;
    remember();
    polys = prev.masks.map((p) => ({
      type: p.type,
      points: p.points.map(([x, y]) => [clamp(x * sx, 0, info.width), clamp(y * sy, 0, info.height)]),
    }));
    drawing = null;
    changed();
    studio.message(`copied ${polys.length} polygon${polys.length === 1 ? "" : "s"} from ${prev.name}`);
  }

  async function save() {
    if (drawing && drawing.points.length >= 3) closePolygon(); // an open polygon is saved closed
    else if (drawing) {
      remember();
      drawing = null; // fewer than 3 points: not a polygon
    }
    const body = { face, masks: polys };
    try {
      const r = await studio.post("/api/masks", body);
      saved = JSON.stringify(r.masks);
      polys = clone(r.masks);
      studio.message(`saved ${r.saved} polygon${r.saved === 1 ? "" : "s"} into ${info.name}`);
      changed();
      return true;
    } catch (e) {
      studio.message(e.message, "error");
      changed();
      return false;
    }
  }

  // another face: this one saved first (at either end it is only saved)
  async function go(rel, which) {
    if (busy) return;
    if (isDirty() && !(await save())) return;
    if (rel) await open(rel);
    else studio.message(`no ${which} face in the grid's order`);
  }

  // --- mouse -----------------------------------------------------------------------------------------------------

  canvas.addEventListener("mousedown", (ev) => {
    if (!info) return;
    canvas.focus({ preventScroll: true });
    const pt = toImage(ev);
    if (ev.button === 2) return; // closes on contextmenu
    if (ev.button !== 0) return;
    const v = drawing ? null : vertexAt(pt);
    if (v) drag = { ...v, moved: false };
    else addPoint(pt);
    ev.preventDefault();
  });
  window.addEventListener("mousemove", (ev) => {
    if (!info) return;
    const r = canvas.getBoundingClientRect();
    const over = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
    mouse = over || drag ? toImage(ev) : null;
    if (drag) {
      if (!drag.moved) remember();
      drag.moved = true;
      polys[drag.p].points[drag.i] = mouse;
      changed();
      return;
    }
    canvas.style.cursor = mouse && !drawing && vertexAt(mouse) ? "move" : "crosshair";
    draw();
  });
  window.addEventListener("mouseup", () => {
    drag = null;
  });
  canvas.addEventListener("contextmenu", (ev) => {
    ev.preventDefault();
    closePolygon();
  });

  // --- keys and buttons ------------------------------------------------------------------------------------------

  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea")) return;
    const k = ev.key.toLowerCase();
    const ctrl = ev.ctrlKey || ev.metaKey;
    if (ctrl && k === "z" && !ev.shiftKey) undoStep();
    else if ((ctrl && k === "z" && ev.shiftKey) || (ctrl && k === "y")) redoStep();
    else if (ctrl && k === "s") save();
    else if (ctrl || ev.altKey) return;
    else if (k === "enter" || k === " ") closePolygon();
    else if (k === "q") setMode("include");
    else if (k === "w") setMode("exclude");
    else if (k === "escape") {
      if (!drawing) return;
      remember();
      drawing = null;
      changed();
    } else if ((k === "delete" || k === "backspace") && ev.shiftKey) clearAll();
    else if (k === "delete") removePolygon();
    else if (k === "backspace" && drawing) undoStep();
    else if (k === "c") copyPrevious();
    else if (k === "m") toggleXseg();
    else if (k === "a" || k === ",") go(neighbors.prev, "previous");
    else if (k === "d" || k === ".") go(neighbors.next, "next");
    else return;
    ev.preventDefault();
  });

  function toggleXseg() {
    const box = document.getElementById("show-xseg");
    if (box.disabled) return;
    box.checked = !box.checked;
    draw();
  }

  function button(id, fn) {
    document.getElementById(id).addEventListener("click", (ev) => {
      ev.currentTarget.blur(); // Space and Enter belong to the editor, not to the last button clicked
      fn();
      canvas.focus({ preventScroll: true });
    });
  }
  button("mode-include", () => setMode("include"));
  button("mode-exclude", () => setMode("exclude"));
  button("close-poly", closePolygon);
  button("undo", undoStep);
  button("redo", redoStep);
  button("copy-prev", copyPrevious);
  button("clear", clearAll);
  button("prev", () => go(neighbors.prev, "previous"));
  button("next", () => go(neighbors.next, "next"));
  button("save", save);
  document.getElementById("show-xseg").addEventListener("change", draw);
  window.addEventListener("beforeunload", (ev) => {
    if (isDirty()) ev.preventDefault();
  });
  new ResizeObserver(fit).observe(stage);

  open(face);
})();

// Merge tuner: scrub the dst, see the frame merged with the settings on the right, give frame ranges their own
// settings and save them as a merge settings file (README "Merge settings file") for `facelab merge --settings`.
// The frame comes from /api/merge/frame: the merge's own per-frame code, its model prediction cached per frame.
"use strict";

(() => {
  const app = document.getElementById("tuner-app");
  if (!app) return;
  const sourceForm = document.getElementById("source");
  const settingsForm = document.getElementById("settings");
  const scrub = document.getElementById("scrub");
  const frameNo = document.getElementById("frame-no");
  const img = document.getElementById("frame");
  const startIn = document.getElementById("range-start");
  const endIn = document.getElementById("range-end");
  const $ = (id) => document.getElementById(id);

  let source = null; // {dst, faceset, model[, mask_model]}
  let frames = 0;
  let frame = 0;
  let base = {}; // the settings of every frame
  let ranges = []; // [{start, end, settings}], later ones win
  let dirty = false; // the controls hold changes not applied to the base or a range
  let inFlight = false;
  let again = false;
  let shownUrl = null;

  // --- settings ---------------------------------------------------------------------------------------------------

  function effective(i) {
    const s = { ...base };
    for (const r of ranges) if (r.start <= i && i <= r.end) Object.assign(s, r.settings);
    return s;
  }

  function controls() {
    const s = {};
    for (const el of settingsForm.elements) {
      if (!el.name) continue;
      s[el.name] = el.tagName === "SELECT" ? el.value : parseInt(el.value || "0", 10);
    }
    return s;
  }

  function setControls(s) {
    for (const el of settingsForm.elements) if (el.name && el.name in s) el.value = String(s[el.name]);
  }

  function setDirty(d) {
    dirty = d;
    $("dirty").hidden = !d;
  }

  function listRanges() {
    const ul = $("ranges");
    ul.replaceChildren();
    ranges.forEach((r, k) => {
      const li = document.createElement("li");
      li.dataset.testid = "merge-range";
      const changed = Object.entries(r.settings)
        .filter(([n, v]) => base[n] !== v)
        .map(([n, v]) => `${n}=${v}`);
      const text = document.createElement("span");
      text.textContent = `${r.start}–${r.end}: ${changed.join(", ") || "as base"}`;
      const go = document.createElement("button");
      go.type = "button";
      go.textContent = "show";
      go.addEventListener("click", () => seek(r.start));
      const rm = document.createElement("button");
      rm.type = "button";
      rm.textContent = "remove";
      rm.dataset.testid = "merge-range-remove";
      rm.addEventListener("click", () => {
        ranges.splice(k, 1);
        listRanges();
        if (!dirty) setControls(effective(frame));
        draw();
      });
      li.append(text, go, rm);
      ul.append(li);
    });
  }

  // --- the frame --------------------------------------------------------------------------------------------------

  async function draw() {
    if (!source) return;
    if (inFlight) {
      again = true; // one request at a time; the newest settings win
      return;
    }
    inFlight = true;
    again = false;
    const at = frame;
    const settings = controls();
    const p = new URLSearchParams({ ...source, frame: String(at), settings: JSON.stringify(settings) });
    try {
      const r = await fetch(`/api/merge/frame?${p}`, { headers: { Accept: "image/png" } });
      if (!r.ok) {
        let msg = `${r.status} ${r.statusText}`;
        try {
          msg = (await r.json()).error || msg;
        } catch (e) {
          /* not JSON */
        }
        throw new Error(msg);
      }
      const blob = await r.blob();
      if (shownUrl) URL.revokeObjectURL(shownUrl);
      shownUrl = URL.createObjectURL(blob);
      img.src = shownUrl;
      img.dataset.frame = String(at);
      img.dataset.settings = JSON.stringify(settings);
      const model = r.headers.get("X-Predicted") === "1" ? " (model ran)" : "";
      $("timing").textContent = `${r.headers.get("X-Render-Ms")} ms${model}`;
    } catch (e) {
      studio.message(e.message, "error");
    } finally {
      inFlight = false;
    }
    if (again) draw();
  }

  function seek(i) {
    frame = Math.max(0, Math.min(frames - 1, i | 0));
    scrub.value = String(frame);
    frameNo.value = String(frame);
    if (!dirty) setControls(effective(frame));
    draw();
  }

  // --- opening and saving -----------------------------------------------------------------------------------------

  sourceForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(sourceForm);
    const want = { dst: f.get("dst").trim(), faceset: f.get("faceset").trim(), model: f.get("model").trim() };
    const masks = f.get("mask_model").trim();
    if (masks) want.mask_model = masks;
    document.body.classList.add("busy");
    try {
      const info = await studio.post("/api/merge/open", want);
      base = info.base;
      ranges = [];
      const saved = f.get("settings").trim();
      if (saved) {
        const s = await studio.getJSON(`/api/merge/settings?${new URLSearchParams({ path: saved })}`);
        base = { ...base, ...s.base };
        ranges = s.ranges;
        $("save-path").value = saved;
      }
      source = want;
      frames = info.frames;
      scrub.max = String(frames - 1);
      frameNo.max = String(frames - 1);
      startIn.max = endIn.max = String(frames - 1);
      $("info").textContent = `${frames} frames, ${info.width}x${info.height}, model ${info.model_id}`;
      $("tuner").hidden = false;
      setDirty(false);
      listRanges();
      seek(0);
    } catch (e) {
      studio.message(e.message, "error");
    } finally {
      document.body.classList.remove("busy");
    }
  });

  scrub.addEventListener("input", () => seek(parseInt(scrub.value, 10)));
  frameNo.addEventListener("change", () => seek(parseInt(frameNo.value, 10)));
  settingsForm.addEventListener("input", () => {
    setDirty(true);
    draw();
  });
  settingsForm.addEventListener("submit", (ev) => ev.preventDefault());
  $("start-here").addEventListener("click", () => (startIn.value = String(frame)));
  $("end-here").addEventListener("click", () => (endIn.value = String(frame)));

  $("apply-range").addEventListener("click", () => {
    const start = parseInt(startIn.value, 10);
    const end = parseInt(endIn.value, 10);
    if (!(start >= 0 && end >= start && end < frames)) {
      studio.message(`range ${startIn.value}–${endIn.value}: give 0 ≤ start ≤ end < ${frames}`, "error");
      return;
    }
    ranges.push({ start, end, settings: controls() });
    setDirty(false);
    listRanges();
    studio.message(`frames ${start}–${end} use these settings (save to keep them)`);
    seek(frame);
  });

  $("apply-base").addEventListener("click", () => {
    base = controls();
    setDirty(false);
    listRanges();
    seek(frame);
  });

  $("revert").addEventListener("click", () => {
    setDirty(false);
    seek(frame);
  });

  $("save").addEventListener("click", async () => {
    if (!source) return;
    try {
      const r = await studio.post("/api/merge/save", { ...source, path: $("save-path").value, base, ranges });
      studio.message(`saved ${r.path} (${r.ranges} range${r.ranges === 1 ? "" : "s"})`);
      $("command").textContent = r.command;
    } catch (e) {
      studio.message(e.message, "error");
    }
  });

  document.addEventListener("keydown", (ev) => {
    if (!source || ev.target.closest("input, select")) return;
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      seek(frame + (ev.key === "ArrowRight" ? 1 : -1) * (ev.shiftKey ? 10 : 1));
      ev.preventDefault();
    }
  });

  // a page opened as /merge?dst=..&faceset=..&model=..[&mask_model=..][&settings=..] opens them at once
  const q = new URLSearchParams(location.search);
  if (q.get("dst") && q.get("faceset") && q.get("model")) {
    for (const k of ["dst", "faceset", "model", "mask_model", "settings"])
      if (q.get(k)) sourceForm.elements[k].value = q.get(k);
    sourceForm.requestSubmit();
  }
})();

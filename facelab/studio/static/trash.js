// The trash view: restore a whole batch or one face (back into its faceset under its own name).
"use strict";

document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button.restore-batch, button.restore-one");
  if (!button) return;
  const batchEl = button.closest(".batch");
  const item = button.closest(".item");
  const body = { faceset: batchEl.dataset.faceset, batch: batchEl.dataset.batch };
  if (item) body.names = [item.dataset.name];
  button.disabled = true;
  try {
    const r = await studio.post("/api/restore", body);
    studio.message(`restored ${r.restored.length} face${r.restored.length === 1 ? "" : "s"} to ${r.faceset || "."}`);
    if (item) item.remove();
    if (!item || !batchEl.querySelector(".item, .more")) batchEl.remove();
  } catch (e) {
    studio.message(e.message, "error");
    button.disabled = false;
  }
});

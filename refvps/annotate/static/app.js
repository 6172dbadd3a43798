"use strict";
// refvps annotate: the page. All state lives on the server; this file draws and sends edits.
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (sel) => document.querySelector(sel);
const view = $("#view");
const ctx = view.getContext("2d");
const S = {
  state: null, index: 0, tool: "click", size: 8, opacity: 0.55, playing: null,
  frameImg: null, overlayImg: null, stroke: null, boxStart: null, boxEnd: null, busy: false,
};
const OPACITIES = [0, 0.3, 0.55, 0.8, 1];

async function api(path, body) {
  const opts = {headers: {"X-Refvps-Token": token}};
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) {
    const detail = data.problems ? ": " + data.problems.join("; ") : "";
    throw new Error((data.error || res.statusText) + detail);
  }
  return data;
}

function say(text, isError) {
  const m = $("#message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

function frameName() { return S.state.frames[S.index]; }
function annoFrame() { return S.state.anno_frames.find((f) => f.name === frameName()) || null; }

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + src));
    img.src = src;
  });
}

async function show(index) {
  S.index = Math.max(0, Math.min(S.state.frames.length - 1, index));
  const name = frameName();
  const anno = annoFrame();
  const img = await loadImage(`/frames/${name}.jpg?token=${token}`);
  const overlay = anno ? await loadImage(`/api/frame/${name}/overlay.png?token=${token}&rev=${anno.rev}`) : null;
  if (frameName() !== name) return;  // a newer request won
  S.frameImg = img;
  S.overlayImg = overlay;
  $("#scrubber").value = S.index;
  $("#frame-label").textContent = `${name} / ${S.state.frames[S.state.frames.length - 1]}` +
    (anno ? `  annotation frame, ${anno.status}` : "  (24 fps preview, not annotated)");
  $("#reviewed").checked = !!(anno && anno.reviewed);
  $("#reviewed").disabled = !anno;
  renderStrip();
  draw();
}

function fitView() {
  const stage = $("#stage");
  const scale = Math.min(stage.clientWidth / S.state.width, 0.7 * innerHeight / S.state.height);
  view.style.width = `${Math.floor(S.state.width * scale)}px`;
  view.style.height = `${Math.floor(S.state.height * scale)}px`;
}
addEventListener("resize", () => S.state && fitView());

function draw() {
  if (!S.frameImg) return;
  if (view.width !== S.state.width || view.height !== S.state.height) {
    view.width = S.state.width;
    view.height = S.state.height;
    fitView();
  }
  ctx.drawImage(S.frameImg, 0, 0);
  if (S.overlayImg) {
    ctx.globalAlpha = S.opacity;
    ctx.drawImage(S.overlayImg, 0, 0);
    ctx.globalAlpha = 1;
  }
  const anno = annoFrame();
  const r = Math.max(3, Math.round(S.state.width / 160));
  if (anno) {
    if (anno.box) {
      ctx.strokeStyle = "#00e676"; ctx.lineWidth = Math.max(1, r / 2);
      const [x0, y0, x1, y1] = anno.box;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const [x, y, label] of anno.points) {
      ctx.fillStyle = label ? "#00e676" : "#ff1744";
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
    }
  }
  if (S.boxStart && S.boxEnd) {
    ctx.strokeStyle = "#00e676"; ctx.setLineDash([4, 3]);
    ctx.strokeRect(S.boxStart[0], S.boxStart[1], S.boxEnd[0] - S.boxStart[0], S.boxEnd[1] - S.boxStart[1]);
    ctx.setLineDash([]);
  }
  if (S.stroke) {
    ctx.strokeStyle = {brush: "#1e90ff", eraser: "#ffffff", ignore: "#ffd600", unignore: "#888"}[S.tool];
    ctx.lineWidth = 2 * S.size; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.globalAlpha = 0.6;
    ctx.beginPath();
    S.stroke.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (S.stroke.length === 1) ctx.lineTo(S.stroke[0][0] + 0.01, S.stroke[0][1]);
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}

function renderStrip() {
  const strip = $("#strip");
  strip.replaceChildren(...S.state.anno_frames.map((f) => {
    const b = document.createElement("button");
    b.className = `st-${f.status}` + (f.name === frameName() ? " current" : "");
    b.dataset.testid = `strip-${f.name}`;
    b.title = `${f.name}: ${f.status}`;
    b.textContent = String(Number(f.name));
    b.onclick = () => show(S.state.frames.indexOf(f.name));
    return b;
  }));
  $("#undo").disabled = !S.state.undo;
  $("#redo").disabled = !S.state.redo;
}

function updateFrame(view) {
  const i = S.state.anno_frames.findIndex((f) => f.name === view.name);
  if (i >= 0) S.state.anno_frames[i] = view;
}

async function edit(path, body) {
  if (!annoFrame()) { say("Not an annotation frame: edits are made on the 6 fps frames.", true); return; }
  try {
    const out = await api(`/api/frame/${frameName()}/${path}`, body);
    updateFrame(out.frame);
    S.state.undo = out.undo; S.state.redo = out.redo;
    say(`${path.replace("_", " ")}: saved`);
    await show(S.index);
  } catch (e) { say(e.message, true); }
}

function toImage(ev) {
  const rect = view.getBoundingClientRect();
  return [(ev.clientX - rect.left) * view.width / rect.width,
          (ev.clientY - rect.top) * view.height / rect.height];
}

view.addEventListener("contextmenu", (ev) => ev.preventDefault());
view.addEventListener("pointerdown", (ev) => {
  const p = toImage(ev);
  if (S.tool === "click") {
    edit("click", {x: p[0], y: p[1], positive: ev.button === 0 && !ev.altKey});
  } else if (S.tool === "box") {
    S.boxStart = p; S.boxEnd = p;
  } else {
    S.stroke = [p];
    view.setPointerCapture(ev.pointerId);
    draw();
  }
});
view.addEventListener("pointermove", (ev) => {
  if (S.boxStart) { S.boxEnd = toImage(ev); draw(); }
  else if (S.stroke) { S.stroke.push(toImage(ev)); draw(); }
});
view.addEventListener("pointerup", (ev) => {
  if (S.boxStart) {
    const [a, b] = [S.boxStart, toImage(ev)];
    S.boxStart = S.boxEnd = null;
    if (Math.abs(a[0] - b[0]) > 2 && Math.abs(a[1] - b[1]) > 2) edit("box", {box: [a[0], a[1], b[0], b[1]]});
    else draw();
  } else if (S.stroke) {
    const points = S.stroke;
    S.stroke = null;
    const kind = {brush: "add", eraser: "erase", ignore: "ignore", unignore: "unignore"}[S.tool];
    edit("stroke", {kind, points, radius: S.size});
  }
});

function setTool(tool) {
  S.tool = tool;
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
  view.style.cursor = tool === "click" || tool === "box" ? "crosshair" : "cell";
}

async function refresh() {
  S.state = await api("/api/state");
  renderStrip();
  await show(S.index);
}

async function propagate(direction) {
  const anno = annoFrame();
  if (!anno) { say("Propagate from an annotation frame.", true); return; }
  try {
    const out = await api("/api/propagate", {frame: anno.name, direction});
    await followJob(out.job);
  } catch (e) { say(e.message, true); }
}

async function followJob(job) {
  $("#cancel").disabled = false;
  while (job && job.state === "running") {
    $("#progress").max = Math.max(1, job.total);
    $("#progress").value = job.done;
    $("#job").textContent = `propagating ${job.direction}: ${job.done} / ${job.total}`;
    await new Promise((r) => setTimeout(r, 150));
    job = (await api("/api/job")).job;
  }
  $("#cancel").disabled = true;
  if (job) {
    $("#progress").max = Math.max(1, job.total);
    $("#progress").value = job.done;
    $("#job").textContent = `${job.state}: ${job.done} / ${job.total} frames` + (job.error ? ` (${job.error})` : "");
    $("#job").dataset.state = job.state;
  }
  await refresh();
}

async function undoRedo(which) {
  try {
    const out = await api(`/api/${which}`, {});
    if (!out.changed.length) say(`nothing to ${which}`);
    await refresh();
  } catch (e) { say(e.message, true); }
}

let metaTimer = null;
function saveMetaSoon() {
  $("#saved").textContent = "editing...";
  clearTimeout(metaTimer);
  metaTimer = setTimeout(saveMeta, 400);
}
async function saveMeta() {
  clearTimeout(metaTimer);
  const expressions = [...document.querySelectorAll("[data-exp]")].map((el) => el.value);
  const concept_groups = [...document.querySelectorAll("#groups input:checked")].map((el) => el.value);
  try {
    const out = await api("/api/meta", {expressions, concept: $("#concept").value, concept_groups});
    S.state.meta = out.meta;
    $("#saved").textContent = "saved";
  } catch (e) { $("#saved").textContent = "not saved: " + e.message; }
}

function fillMeta() {
  const meta = S.state.meta;
  document.querySelectorAll("[data-exp]").forEach((el) => { el.value = meta.expressions[Number(el.dataset.exp)] || ""; });
  $("#concept").value = meta.concept;
  $("#groups").replaceChildren(...S.state.concept_groups.map((g) => {
    const label = document.createElement("label");
    label.title = g.definition;
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = g.id; box.dataset.testid = `group-${g.id}`;
    box.checked = meta.concept_groups.includes(g.id);
    box.onchange = saveMeta;
    label.append(box, " " + g.name);
    return label;
  }));
}

function annoStep(delta) {
  const names = S.state.anno_frames.map((f) => f.name);
  const cur = frameName();
  let i = names.findIndex((n) => n >= cur);
  if (delta > 0) i = names[i] === cur ? i + 1 : i;
  else i = (i < 0 ? names.length : i) - 1;
  if (i >= 0 && i < names.length) show(S.state.frames.indexOf(names[i]));
}

function togglePlay() {
  if (S.playing) { clearInterval(S.playing); S.playing = null; $("#play").textContent = "Play"; return; }
  $("#play").textContent = "Pause";
  S.playing = setInterval(() => {
    if (S.index >= S.state.frames.length - 1) { togglePlay(); return; }
    show(S.index + 1);
  }, 1000 / S.state.fps);
}

async function setReviewed(value) {
  await edit("reviewed", {reviewed: value});
}

document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input:not([type=range]):not([type=checkbox]), textarea")) return;
  const k = ev.key;
  const ctrl = ev.ctrlKey || ev.metaKey;
  let handled = true;
  if (ctrl && (k === "z" || k === "Z")) undoRedo(ev.shiftKey ? "redo" : "undo");
  else if (ctrl && k === "y") undoRedo("redo");
  else if (ctrl) handled = false;
  else if (k === "ArrowRight") annoStep(1);
  else if (k === "ArrowLeft") annoStep(-1);
  else if (k === ".") show(S.index + 1);
  else if (k === ",") show(S.index - 1);
  else if (k === "k" || k === "K") togglePlay();
  else if (k === "a" || k === "A") setTool("click");
  else if (k === "x" || k === "X") setTool("box");
  else if (k === "b" || k === "B") setTool("brush");
  else if (k === "e" || k === "E") setTool("eraser");
  else if (k === "i" || k === "I") setTool("ignore");
  else if (k === "u" || k === "U") setTool("unignore");
  else if (k === "[") { S.size = Math.max(1, S.size - 2); $("#size").value = S.size; }
  else if (k === "]") { S.size = Math.min(80, S.size + 2); $("#size").value = S.size; }
  else if (k === "o" || k === "O") {
    S.opacity = OPACITIES[(OPACITIES.indexOf(S.opacity) + 1) % OPACITIES.length] ?? 0.55;
    $("#opacity").value = Math.round(S.opacity * 100); draw();
  }
  else if (k === "p") propagate("forward");
  else if (k === "P") propagate("backward");
  else if (k === "Escape") api("/api/job/cancel", {});
  else if (k === "r" || k === "R") { const a = annoFrame(); if (a) setReviewed(!a.reviewed); }
  else if (k === " ") { if (annoFrame()) setReviewed(true).then(() => annoStep(1)); }
  else if (k === "Backspace") edit("clear_prompts", {});
  else if (k === "Delete" && ev.shiftKey) edit("clear", {});
  else handled = false;
  if (handled) ev.preventDefault();
});

document.querySelectorAll("[data-tool]").forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
$("#size").oninput = (ev) => { S.size = Number(ev.target.value); };
$("#opacity").oninput = (ev) => { S.opacity = Number(ev.target.value) / 100; draw(); };
$("#scrubber").oninput = (ev) => show(Number(ev.target.value));
$("#play").onclick = togglePlay;
$("#prop-fwd").onclick = () => propagate("forward");
$("#prop-back").onclick = () => propagate("backward");
$("#prop-both").onclick = () => propagate("both");
$("#cancel").onclick = () => api("/api/job/cancel", {});
$("#undo").onclick = () => undoRedo("undo");
$("#redo").onclick = () => undoRedo("redo");
$("#reviewed").onchange = (ev) => setReviewed(ev.target.checked);
$("#clear-prompts").onclick = () => edit("clear_prompts", {});
$("#clear-frame").onclick = () => edit("clear", {});
document.querySelectorAll("[data-exp], #concept").forEach((el) => {
  el.addEventListener("input", saveMetaSoon);
  el.addEventListener("change", saveMeta);
});
$("#export").onclick = async () => {
  await saveMeta();
  say("exporting...");
  try {
    const out = await api("/api/export", {});
    say(`exported ${out.clip_id} to ${out.dataset}`);
  } catch (e) { say("export failed: " + e.message, true); }
};

(async () => {
  try {
    S.state = await api("/api/state");
    $("#clip").textContent = `${S.state.clip_id}  ${S.state.width}x${S.state.height}, ` +
      `${S.state.frames.length} frames at ${S.state.fps} fps, ${S.state.anno_frames.length} annotation frames`;
    $("#backend").textContent = `backend: ${S.state.backend}`;
    $("#scrubber").max = S.state.frames.length - 1;
    fillMeta();
    setTool("click");
    await show(0);
    if (S.state.job && S.state.job.state === "running") followJob(S.state.job);
    document.body.dataset.ready = "1";
  } catch (e) { say(e.message, true); }
})();

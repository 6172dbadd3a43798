"use strict";
// refvps annotate: the page. All annotation state lives on the server; this file draws, keeps
// the view state (frame, tool, zoom, opacity) in localStorage, and sends edits through one
// ordered queue: an action is never dropped, it is applied, waits (behind a propagation, or
// while the server is unreachable), asks first (when it would discard work) or says why not.
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (sel) => document.querySelector(sel);
const view = $("#view");
const ctx = view.getContext("2d");
const S = {
  state: null, index: 0, tool: "click", size: 8, opacity: 0.55, mode: "both", colour: "auto",
  zoom: 1, panX: 0, panY: 0, playing: null, frameImg: null, shown: null, labels: null,
  fillLayer: null, lineLayer: null, autoColour: "#1e90ff", stroke: null, boxStart: null,
  boxEnd: null, cursor: null, pan: null, queue: [], pumping: false, offline: false, job: null,
  plan: null,
};
const OPACITIES = [0, 0.3, 0.55, 0.8, 1];
const MODES = ["both", "fill", "outline"];
const PALETTE = ["#1e90ff", "#ff2bd6", "#00e676", "#ff8c00", "#00e5ff"];
const IGNORE_RGB = [255, 214, 0];
// measured by benchmarks/annotate_latency.py: pointer event -> marker painted, -> the server's
// answer, -> the new mask painted
window.refvpsMetrics = {markerMs: [], answerMs: [], maskMs: []};

class HttpError extends Error {
  constructor(status, data) {
    const detail = data.problems ? ": " + data.problems.join("; ") : "";
    super((data.error || `HTTP ${status}`) + detail);
    this.status = status; this.data = data;
  }
}
class OfflineError extends Error {}

async function api(path, body) {
  const opts = {headers: {"X-Refvps-Token": token}};
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try { res = await fetch(path, opts); } catch (e) { goOffline(); throw new OfflineError("the server is unreachable"); }
  let data = {};
  try { data = await res.json(); } catch (e) { data = {error: res.statusText}; }
  if (res.status === 403 && /token/.test(data.error || "")) showReconnect();
  if (res.status === 503) { goOffline(); throw new OfflineError("the server is busy"); }
  if (!res.ok) throw new HttpError(res.status, data);
  if (S.offline) backOnline();
  return data;
}

// --- messages --------------------------------------------------------------------------------
function say(text, isError) {
  const m = $("#message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}
function frameRange(names) {
  if (!names.length) return "no frames";
  return names.length === 1 ? names[0] : `${names.length} frames, ${names[0]}\u2013${names[names.length - 1]}`;
}

// --- connection ------------------------------------------------------------------------------
let retryTimer = null;
function goOffline() {
  if (S.offline) return;
  S.offline = true;
  $("#offline").hidden = false;
  updateOffline();
  retryTimer = setInterval(async () => {
    try { S.state = await api("/api/state"); } catch (e) { return; }
  }, 2000);
}
function updateOffline() {
  const waiting = S.queue.length ? ` ${S.queue.length} action(s) wait and will be sent in order.` : "";
  $("#offline").textContent = "Server unreachable: retrying every 2 s." + waiting +
    " You can keep browsing the frames already loaded.";
  $("#connection").textContent = S.offline ? "offline" : "";
}
function backOnline() {
  S.offline = false;
  clearInterval(retryTimer);
  $("#offline").hidden = true;
  updateOffline();
  say("reconnected");
  refresh().then(pump);
}
function showReconnect() {
  $("#reconnect").hidden = false;
  document.body.classList.add("dead");
}

// --- frames and overlays ---------------------------------------------------------------------
function frameName() { return S.state.frames[S.index]; }
function annoOf(name) { return S.state.anno_frames.find((f) => f.name === name) || null; }
function annoFrame() { return annoOf(frameName()); }

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + src));
    img.src = src;
  });
}

const frameCache = new Map();  // name -> loaded frame image (the frames never change)
async function frameImage(name) {
  let img = frameCache.get(name);
  if (!img) {
    img = await loadImage(`/frames/${name}.jpg?token=${token}`);
    frameCache.set(name, img);
    if (frameCache.size > 32) frameCache.delete(frameCache.keys().next().value);
  }
  return img;
}

function hexRgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }

function pickContrast(img, labels) {
  // the palette colour farthest from the mean colour of the frame under (or around) the mask
  const w = 96, h = Math.max(1, Math.round(96 * img.height / img.width));
  const c = new OffscreenCanvas(w, h).getContext("2d");
  c.drawImage(img, 0, 0, w, h);
  const px = c.getImageData(0, 0, w, h).data;
  let sum = [0, 0, 0], n = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const inside = !labels || labels.count === 0 ||
      labels.data[Math.floor(y * img.height / h) * img.width + Math.floor(x * img.width / w)] === 1;
    if (!inside) continue;
    const i = 4 * (y * w + x);
    sum[0] += px[i]; sum[1] += px[i + 1]; sum[2] += px[i + 2]; n++;
  }
  const mean = sum.map((v) => v / Math.max(1, n));
  let best = PALETTE[0], bestD = -1;
  for (const hex of PALETTE) {
    const d = hexRgb(hex).reduce((a, v, i) => a + (v - mean[i]) ** 2, 0);
    if (d > bestD) { best = hex; bestD = d; }
  }
  return best;
}

function decodeOverlay(img) {
  // the server's overlay PNG (target blue, Ignore yellow) -> labels 0 / 1 / 2
  const w = img.width, h = img.height;
  const c = new OffscreenCanvas(w, h).getContext("2d");
  c.drawImage(img, 0, 0);
  const px = c.getImageData(0, 0, w, h).data;
  const data = new Uint8Array(w * h);
  let count = 0;
  for (let i = 0; i < w * h; i++) {
    if (px[4 * i + 3] === 0) continue;
    data[i] = px[4 * i] > 200 ? 2 : 1;  // yellow has red 255, blue has red 30
    if (data[i] === 1) count++;
  }
  return {w, h, data, count};
}

function decodeRuns(mask) {
  // a frame edit's answer carries the new mask as runs [value, length, ...] (0 / 1 / 2)
  const data = new Uint8Array(mask.w * mask.h);
  let at = 0, count = 0;
  for (let i = 0; i < mask.runs.length; i += 2) {
    const v = mask.runs[i], n = mask.runs[i + 1];
    if (v) data.fill(v, at, at + n);
    if (v === 1) count += n;
    at += n;
  }
  return {w: mask.w, h: mask.h, data, count};
}

function buildLayers() {
  const L = S.labels;
  if (!L) { S.fillLayer = S.lineLayer = null; return; }
  const colour = hexRgb(S.colour === "auto" ? S.autoColour : S.colour);
  const fill = new ImageData(L.w, L.h), line = new ImageData(L.w, L.h);
  const d = L.data, w = L.w, h = L.h;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * w + x, v = d[i];
    if (!v) continue;
    const rgb = v === 1 ? colour : IGNORE_RGB;
    const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
      d[i - 1] !== v || d[i + 1] !== v || d[i - w] !== v || d[i + w] !== v;
    const target = edge ? line : fill;
    target.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    if (edge) fill.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
  }
  S.fillLayer = new OffscreenCanvas(w, h);
  S.fillLayer.getContext("2d").putImageData(fill, 0, 0);
  S.lineLayer = new OffscreenCanvas(w, h);
  const lc = S.lineLayer.getContext("2d");
  lc.putImageData(line, 0, 0);
  // thicken the outline so it reads at any zoom
  lc.globalCompositeOperation = "source-over";
  const once = new OffscreenCanvas(w, h);
  once.getContext("2d").putImageData(line, 0, 0);
  for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) lc.drawImage(once, dx, dy);
}

let showSeq = 0;
async function show(index) {
  if (!S.state) return;
  S.index = Math.max(0, Math.min(S.state.frames.length - 1, index));
  const seq = ++showSeq;
  const name = frameName();
  const anno = annoFrame();
  renderLabel();
  renderStrip();
  saveView();
  try {
    const img = await frameImage(name);
    const overlay = anno ? await loadImage(`/api/frame/${name}/overlay.png?token=${token}&rev=${anno.rev}`) : null;
    if (seq !== showSeq) return;  // a newer request won
    S.frameImg = img;
    S.shown = name;
    S.labels = overlay ? decodeOverlay(overlay) : null;
    S.autoColour = pickContrast(img, S.labels);
    buildLayers();
  } catch (e) {
    if (seq === showSeq) say(`${name}: ${e.message} (${S.offline ? "offline" : "try again"})`, true);
  }
  if (seq === showSeq) { draw(); if (anno) prepareSoon(name); }
}

function paintMask(mask) {
  // the answer's mask is the newest: a show() still loading an older overlay must not win
  ++showSeq;
  S.labels = decodeRuns(mask);
  S.autoColour = pickContrast(S.frameImg, S.labels);
  buildLayers();
  renderLabel();
  renderStrip();
  draw();
}

let prepareTimer = null;
function prepareSoon(name) {
  // let the backend encode the frame while the annotator looks at it
  clearTimeout(prepareTimer);
  prepareTimer = setTimeout(() => {
    if (!S.offline && !S.queue.length && frameName() === name && !(S.job && S.job.state === "running"))
      api(`/api/frame/${name}/prepare`, {}).catch(() => {});
  }, 250);
}

function renderLabel() {
  const name = frameName(), anno = annoFrame();
  const last = S.state.frames[S.state.frames.length - 1];
  let what = "  (24 fps preview, not annotated)";
  if (anno) {
    what = `  annotation frame, ${anno.no_target ? "no target" : anno.status}` + (anno.locked ? ", locked" : "");
  }
  $("#frame-label").textContent = `${name} / ${last}${what}`;
  $("#scrubber").value = S.index;
  $("#reviewed").checked = !!(anno && anno.reviewed);
  $("#reviewed").disabled = !anno;
}

// --- view: zoom and pan ----------------------------------------------------------------------
function fitScale() {
  const stage = $("#stage");
  return Math.min(stage.clientWidth / S.state.width, 0.62 * innerHeight / S.state.height);
}
function applyView() {
  const stage = $("#stage");
  const fit = fitScale();
  const w = S.state.width * fit, h = S.state.height * fit;
  stage.style.height = `${Math.floor(h)}px`;
  view.style.width = `${w}px`;
  view.style.height = `${h}px`;
  if (S.zoom <= 1) { S.zoom = 1; S.panX = (stage.clientWidth - w) / 2; S.panY = 0; }
  view.style.transform = `translate(${S.panX}px, ${S.panY}px) scale(${S.zoom})`;
  $("#zoom-label").textContent = `${Math.round(S.zoom * 100)}%`;
  $("#zoom-label").dataset.zoom = S.zoom.toFixed(3);
}
function zoomAt(factor, sx, sy) {
  const stage = $("#stage").getBoundingClientRect();
  if (sx === undefined) { sx = stage.width / 2; sy = stage.height / 2; }
  const z = Math.max(1, Math.min(16, S.zoom * factor));
  S.panX = sx - (sx - S.panX) * z / S.zoom;
  S.panY = sy - (sy - S.panY) * z / S.zoom;
  S.zoom = z;
  applyView(); draw(); saveView();
}
function panBy(dx, dy) {
  if (S.zoom <= 1) { say("pan: zoom in first (+ or the mouse wheel)"); return; }
  S.panX += dx; S.panY += dy;
  applyView(); saveView();
}
addEventListener("resize", () => S.state && applyView());
$("#stage").addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const r = $("#stage").getBoundingClientRect();
  if (ev.shiftKey) panBy(-ev.deltaY, 0);
  else zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - r.left, ev.clientY - r.top);
}, {passive: false});

// --- drawing ---------------------------------------------------------------------------------
function draw() {
  if (!S.frameImg) return;
  if (view.width !== S.state.width || view.height !== S.state.height) {
    view.width = S.state.width;
    view.height = S.state.height;
    applyView();
  }
  ctx.drawImage(S.frameImg, 0, 0);
  const anno = annoFrame();
  if (anno && S.labels) {
    if (S.mode !== "outline" && S.fillLayer) {
      ctx.globalAlpha = S.opacity; ctx.drawImage(S.fillLayer, 0, 0); ctx.globalAlpha = 1;
    }
    if (S.mode !== "fill" && S.lineLayer) ctx.drawImage(S.lineLayer, 0, 0);
  }
  const px = view.width / view.getBoundingClientRect().width;  // image pixels per screen pixel
  const r = Math.max(3, 5 * px);
  if (anno) {
    if (anno.box) {
      ctx.strokeStyle = "#00e676"; ctx.lineWidth = 2 * px;
      const [x0, y0, x1, y1] = anno.box;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const [x, y, label] of anno.points) marker(x, y, label, r, false);
  }
  for (const a of S.queue) {
    if (a.marker && a.frame === frameName()) marker(a.marker[0], a.marker[1], a.marker[2], r, true);
  }
  if (S.boxStart && S.boxEnd) {
    ctx.strokeStyle = "#00e676"; ctx.setLineDash([4 * px, 3 * px]); ctx.lineWidth = 2 * px;
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
  if (S.cursor && isBrush()) {  // the brush at its true size
    ctx.beginPath(); ctx.arc(S.cursor[0], S.cursor[1], S.size, 0, 2 * Math.PI);
    ctx.lineWidth = 1.5 * px; ctx.strokeStyle = "#000"; ctx.stroke();
    ctx.setLineDash([3 * px, 3 * px]); ctx.strokeStyle = "#fff"; ctx.stroke(); ctx.setLineDash([]);
  }
}
function marker(x, y, label, r, pending) {
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fillStyle = label ? "#00e676" : "#ff1744";
  ctx.globalAlpha = pending ? 0.6 : 1; ctx.fill(); ctx.globalAlpha = 1;
  ctx.strokeStyle = pending ? "#fff" : "#000"; ctx.lineWidth = r / 3;
  if (pending) ctx.setLineDash([r / 2, r / 2]);
  ctx.stroke(); ctx.setLineDash([]);
}
function isBrush() { return ["brush", "eraser", "ignore", "unignore"].includes(S.tool); }

// --- the frame strip -------------------------------------------------------------------------
function planFor(frame, direction) {
  // the same rule as the server (Session.plan): up to, not including, the next locked frame
  const names = S.state.anno_frames;
  const start = names.findIndex((f) => f.name === frame);
  const targets = [], stops = [];
  for (const step of direction === "both" ? [1, -1] : [direction === "backward" ? -1 : 1]) {
    let k = start + step;
    while (k >= 0 && k < names.length && !names[k].locked) { targets.push(names[k].name); k += step; }
    if (k >= 0 && k < names.length) stops.push(names[k].name);
  }
  return {frame, direction, targets, stops};
}

function renderStrip() {
  const strip = $("#strip");
  const running = S.job && S.job.state === "running";
  const pending = new Set(running ? S.job.targets.filter((f) => !S.job.completed.includes(f)) : []);
  const planned = new Set(S.plan ? S.plan.targets : []);
  const existing = new Map([...strip.children].map((b) => [b.dataset.name, b]));
  const buttons = S.state.anno_frames.map((f) => {
    let b = existing.get(f.name);
    if (!b) {
      b = document.createElement("button");
      b.dataset.name = f.name;
      b.dataset.testid = `strip-${f.name}`;
      const img = document.createElement("img");
      img.loading = "lazy"; img.alt = "";
      img.src = `/thumbs/${f.name}.jpg?token=${token}`;
      const label = document.createElement("span");
      b.append(img, label);
      b.onclick = () => show(S.state.frames.indexOf(f.name));
    }
    const classes = [`st-${f.status}`];
    if (f.name === frameName()) classes.push("current");
    if (f.locked) classes.push("locked");
    if (f.no_target) classes.push("no-target");
    if (planned.has(f.name)) classes.push("target");
    if (pending.has(f.name)) classes.push("pending");
    b.className = classes.join(" ");
    b.title = `${f.name}: ${f.no_target ? "no target" : f.status}${f.locked ? ", locked (propagation stops before it)" : ""}`;
    b.lastChild.textContent = String(Number(f.name)) + (f.no_target ? " \u2205" : "");
    return b;
  });
  if (buttons.length !== strip.children.length) strip.replaceChildren(...buttons);
  $("#undo").disabled = !S.state.undo;
  $("#redo").disabled = !S.state.redo;
}

function updateFrame(v) {
  const i = S.state.anno_frames.findIndex((f) => f.name === v.name);
  if (i >= 0) S.state.anno_frames[i] = v;
}

// --- the action queue ------------------------------------------------------------------------
function enqueue(action) {
  S.queue.push(action);
  if (S.queue.length > 1 || S.offline) {
    const waiting = S.offline ? "the server is unreachable" : `${S.queue.length - 1} earlier action(s)`;
    say(`${action.label}: queued behind ${waiting}`);
  }
  if (S.offline) updateOffline();
  pump();
}

function waitForJobEnd() {
  return new Promise((resolve) => {
    const tick = async () => {
      if (!S.job || S.job.state !== "running") return resolve();
      setTimeout(tick, 200);
    };
    tick();
  });
}

async function pump() {
  if (S.pumping) return;
  S.pumping = true;
  try {
    while (S.queue.length && !S.offline) {
      const a = S.queue[0];
      let out;
      try {
        out = await api(a.path, a.body);
      } catch (e) {
        if (e instanceof OfflineError) break;  // kept; sent when the server is back
        if (e instanceof HttpError && e.status === 409 && e.data.confirm) {
          S.queue.shift();
          const yes = await askConfirm(e.data.error, a.confirmLabel || "Go ahead", e.data.targets);
          if (yes) { a.body = {...a.body, confirm: true}; S.queue.unshift(a); }
          else { say(`${a.label}: cancelled, nothing changed`); draw(); }
        } else if (e instanceof HttpError && e.status === 409 && S.job && S.job.state === "running") {
          say(`${a.label}: waits for the propagation to end (Esc cancels it)`);
          await waitForJobEnd();
        } else if (e instanceof HttpError && e.status === 409 && /propagation/.test(e.message)) {
          await refreshJob();
          if (!(S.job && S.job.state === "running")) await new Promise((r) => setTimeout(r, 300));
        } else {
          S.queue.shift();
          say(`${a.label}: not done: ${e.message}`, true);
          draw();
        }
        continue;
      }
      S.queue.shift();
      if (a.t0 !== undefined) window.refvpsMetrics.answerMs.push(performance.now() - a.t0);
      try { await a.done(out); } catch (e) { say(`${a.label}: done, but the page could not show it: ${e.message}`, true); }
    }
  } finally {
    S.pumping = false;
    if (S.offline) updateOffline();
  }
}

function askConfirm(text, yesLabel, targets, undoable = true) {
  return new Promise((resolve) => {
    const box = $("#confirm");
    $("#confirm-text").textContent = text + (targets ? ` (${frameRange(targets)})` : "") +
      (undoable ? ". Undo reverts it." : "");
    $("#confirm-yes").textContent = yesLabel;
    box.hidden = false;
    if (targets) { S.plan = {targets}; renderStrip(); }
    const finish = (value) => {
      box.hidden = true; S.plan = null; renderStrip();
      $("#confirm-yes").onclick = $("#confirm-no").onclick = null;
      S.confirming = null;
      resolve(value);
    };
    S.confirming = finish;
    $("#confirm-yes").onclick = () => finish(true);
    $("#confirm-no").onclick = () => finish(false);
    $("#confirm-yes").focus();
  });
}

function frameEdit(path, body, label, extra = {}) {
  const anno = annoFrame();
  if (!anno) { say(`${label}: ${frameName()} is a 24 fps preview frame; edits are made on the 6 fps annotation frames (\u2190 / \u2192)`, true); return; }
  const frame = anno.name;
  const t0 = extra.t0;
  enqueue({
    path: `/api/frame/${frame}/${path}`, body, frame, label: `${label} on ${frame}`,
    marker: extra.marker, confirmLabel: extra.confirmLabel, t0,
    done: async (out) => {
      updateFrame(out.frame);
      S.state.undo = out.undo; S.state.redo = out.redo;
      const left = S.queue.length ? `; ${S.queue.length} more queued` : "";
      say(`${label} on ${frame}: ${out.frame.no_target ? "no target" : out.frame.status}` +
          (out.frame.locked ? ", locked" : "") + left);
      if (frameName() === frame && out.mask && S.shown === frame) paintMask(out.mask);
      else if (frameName() === frame) await show(S.index);
      else renderStrip();
      if (t0 !== undefined) window.refvpsMetrics.maskMs.push(performance.now() - t0);
    },
  });
}

// --- pointer ---------------------------------------------------------------------------------
function toImage(ev) {
  const rect = view.getBoundingClientRect();
  return [(ev.clientX - rect.left) * view.width / rect.width,
          (ev.clientY - rect.top) * view.height / rect.height];
}

view.addEventListener("contextmenu", (ev) => ev.preventDefault());
view.addEventListener("pointerdown", (ev) => {
  if (ev.button === 1) {  // middle button: pan
    ev.preventDefault();
    S.pan = [ev.clientX, ev.clientY];
    view.setPointerCapture(ev.pointerId);
    return;
  }
  const p = toImage(ev);
  if (S.tool === "click") {
    const t0 = performance.now();
    const positive = ev.button === 0 && !ev.altKey;
    const label = positive ? 1 : 0;
    if (!annoFrame()) { frameEdit("click", {}, "click"); return; }
    frameEdit("click", {x: p[0], y: p[1], positive}, positive ? "positive click" : "negative click",
              {marker: [p[0], p[1], label], t0});
    draw();  // the marker, before anything reaches the server
    requestAnimationFrame(() => window.refvpsMetrics.markerMs.push(performance.now() - t0));
  } else if (S.tool === "box") {
    S.boxStart = p; S.boxEnd = p;
  } else {
    S.stroke = [p];
    view.setPointerCapture(ev.pointerId);
    draw();
  }
});
view.addEventListener("pointermove", (ev) => {
  if (S.pan) {
    const [x, y] = [ev.clientX, ev.clientY];
    panBy(x - S.pan[0], y - S.pan[1]);
    S.pan = [x, y];
    return;
  }
  S.cursor = toImage(ev);
  if (S.boxStart) S.boxEnd = S.cursor;
  else if (S.stroke) S.stroke.push(S.cursor);
  if (S.boxStart || S.stroke || isBrush()) draw();
});
view.addEventListener("pointerleave", () => { S.cursor = null; if (isBrush()) draw(); });
view.addEventListener("pointerup", (ev) => {
  if (S.pan) { S.pan = null; return; }
  if (S.boxStart) {
    const [a, b] = [S.boxStart, toImage(ev)];
    S.boxStart = S.boxEnd = null;
    if (Math.abs(a[0] - b[0]) > 2 && Math.abs(a[1] - b[1]) > 2) frameEdit("box", {box: [a[0], a[1], b[0], b[1]]}, "box");
    else say("box: drag to draw a box");
    draw();
  } else if (S.stroke) {
    const points = S.stroke;
    S.stroke = null;
    const kind = {brush: "add", eraser: "erase", ignore: "ignore", unignore: "unignore"}[S.tool];
    const label = {brush: "brush stroke", eraser: "eraser stroke", ignore: "Ignore stroke", unignore: "Ignore eraser stroke"}[S.tool];
    frameEdit("stroke", {kind, points, radius: S.size}, label);
  }
});

function setTool(tool) {
  S.tool = tool;
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
  view.style.cursor = tool === "click" || tool === "box" ? "crosshair" : "none";
  saveView();
  draw();
}
function setSize(size) {
  S.size = Math.max(1, Math.min(80, size));
  $("#size").value = S.size;
  saveView(); draw();
}
function setOpacity(value) {
  S.opacity = value;
  $("#opacity").value = Math.round(value * 100);
  saveView(); draw();
}
function setMode(mode) {
  S.mode = mode; $("#mode").value = mode; saveView(); draw();
}

// --- state, propagation, undo ----------------------------------------------------------------
async function refresh() {
  S.state = await api("/api/state");
  if (S.state.job) S.job = S.state.job;
  renderStrip();
  await show(S.index);
}

async function refreshJob() {
  try { S.job = (await api("/api/job")).job; } catch (e) { /* reported by api */ }
}

function showPlan(direction) {
  const anno = annoFrame();
  if (!anno || (S.job && S.job.state === "running")) return;
  S.plan = planFor(anno.name, direction);
  const stop = S.plan.stops.length ? `; stops before locked ${S.plan.stops.join(" and ")}` : "";
  say(`propagate ${direction} from ${anno.name} would overwrite ${frameRange(S.plan.targets)}${stop}`);
  renderStrip();
}
function hidePlan() { if (S.plan && !S.confirming) { S.plan = null; renderStrip(); } }

function propagate(direction) {
  const anno = annoFrame();
  if (!anno) { say(`propagate: ${frameName()} is not an annotation frame; go to one (\u2190 / \u2192)`, true); return; }
  if (S.job && S.job.state === "running") { say("propagate: a propagation is already running (Esc cancels it)", true); return; }
  const plan = planFor(anno.name, direction);
  if (!plan.targets.length) {
    say(`propagate ${direction} from ${anno.name}: nothing to do, the next frame is locked or the clip ends`, true);
    return;
  }
  enqueue({
    path: "/api/propagate", body: {frame: anno.name, direction}, label: `propagate ${direction} from ${anno.name}`,
    confirmLabel: "Propagate anyway",
    done: async (out) => {
      S.job = out.job;
      S.plan = null;
      say(`propagate ${direction} from ${anno.name}: started on ${frameRange(out.job.targets)}`);
      followJob();
    },
  });
}

let following = false;
async function followJob() {
  if (following) return;
  following = true;
  $("#cancel").disabled = false;
  let seen = 0;
  try {
    for (;;) {
      let out;
      try { out = await api(`/api/job/since/${seen}`); } catch (e) { await new Promise((r) => setTimeout(r, 1000)); continue; }
      S.job = out.job;
      if (!S.job) break;
      seen += out.frames.length;
      for (const f of out.frames) updateFrame(f);
      if (out.frames.some((f) => f.name === frameName())) show(S.index);
      renderStrip();
      renderJob();
      if (S.job.state !== "running") break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    following = false;
    $("#cancel").disabled = true;
  }
  const job = S.job;
  if (job) say(`propagate ${job.direction} from ${job.frame}: ${job.state}, ${job.done} of ${job.total} frames` +
               ` in ${job.elapsed_s} s` + (job.error ? ` (${job.error})` : ""), job.state === "failed");
  await refresh();
}
function renderJob() {
  const job = S.job;
  if (!job) return;
  $("#progress").max = Math.max(1, job.total);
  $("#progress").value = job.done;
  const eta = job.eta_s === null || job.eta_s === undefined ? "" : `, about ${Math.ceil(job.eta_s)} s left`;
  $("#job").textContent = job.state === "running"
    ? `propagating ${job.direction} from ${job.frame}: ${job.done} / ${job.total}${eta}`
    : `${job.state}: ${job.done} / ${job.total} frames` + (job.error ? ` (${job.error})` : "");
  $("#job").dataset.state = job.state;
}

async function cancelJob() {
  if (!(S.job && S.job.state === "running")) { say("cancel: no propagation is running"); return; }
  try { await api("/api/job/cancel", {}); say("cancelling the propagation; frames done so far are kept"); }
  catch (e) { say("cancel: " + e.message, true); }
}

function undoRedo(which) {
  if (!S.state[which]) { say(`nothing to ${which}`); return; }
  enqueue({
    path: `/api/${which}`, body: {}, label: which,
    done: async (out) => {
      const names = out.changed.map((f) => f.name);
      for (const f of out.changed) updateFrame(f);
      S.state.undo = out.undo; S.state.redo = out.redo;
      say(out.changed.length ? `${which}: ${out.action} (${frameRange(names)})` : `nothing to ${which}`);
      renderStrip();
      if (names.includes(frameName())) await show(S.index);
    },
  });
}

// --- expressions and export ------------------------------------------------------------------
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
    clearFieldErrors(false);
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

function fieldOf(problem) {
  let m = /expression (\d)/.exec(problem);
  if (m) return `exp-${Number(m[1]) - 1}`;
  if (/identical/.test(problem)) return "exp-0";
  if (/concept group/.test(problem)) return "groups";
  if (/concept/.test(problem)) return "concept";
  return null;
}
function clearFieldErrors(onlyFilled) {
  document.querySelectorAll(".field-error").forEach((el) => {
    const input = document.querySelector(`[data-testid='${el.dataset.errorFor}']`);
    if (onlyFilled && input && input.value === "") return;
    el.textContent = "";
    if (input) input.classList.remove("invalid");
  });
}
function showFieldErrors(problems) {
  clearFieldErrors(false);
  const elsewhere = [];
  let first = null;
  for (const problem of problems) {
    const text = problem.replace(/^[^:]*: /, "");
    const field = fieldOf(text);
    const slot = field && document.querySelector(`[data-error-for='${field}']`);
    if (!slot) { elsewhere.push(text); continue; }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
    const input = document.querySelector(`[data-testid='${field}']`);
    if (input) input.classList.add("invalid");
    first = first || input || slot;
  }
  if (first) { first.scrollIntoView({block: "center"}); if (first.focus) first.focus(); }
  return elsewhere;
}

async function exportClip(replace = false) {
  await saveMeta();
  say("exporting...");
  try {
    const out = await api("/api/export", replace ? {replace: true} : {});
    clearFieldErrors(false);
    say(`exported ${out.clip_id} to ${out.dataset}`);
  } catch (e) {
    if (e instanceof HttpError && e.data.problems) {
      const rest = showFieldErrors(e.data.problems);
      say(`export refused: ${e.data.problems.length} problem(s), shown next to their fields` +
          (rest.length ? `; ${rest.join("; ")}` : ""), true);
    } else if (e instanceof HttpError && e.data.clip_exists) {
      if (await askConfirm(e.data.error.replace(/ \(the API.*$/, ""), "Replace it", null, false)) await exportClip(true);
      else say("export cancelled: the dataset keeps its clip");
    } else say("export failed: " + e.message, true);
  }
}

// --- navigation ------------------------------------------------------------------------------
function annoStep(delta) {
  const names = S.state.anno_frames.map((f) => f.name);
  const cur = frameName();
  let i = names.findIndex((n) => n >= cur);
  if (delta > 0) i = names[i] === cur ? i + 1 : (i < 0 ? names.length : i);
  else i = (i < 0 ? names.length : i) - 1;
  if (i >= 0 && i < names.length) show(S.state.frames.indexOf(names[i]));
  else say(delta > 0 ? "this is the last annotation frame" : "this is the first annotation frame");
}
function nextUnreviewed() {
  const frames = S.state.anno_frames;
  const cur = frameName();
  const after = frames.filter((f) => f.name > cur).concat(frames.filter((f) => f.name <= cur));
  const next = after.find((f) => !f.reviewed);
  if (!next) { say("every annotation frame is reviewed"); return; }
  show(S.state.frames.indexOf(next.name));
  say(`next unreviewed: ${next.name} (${frames.filter((f) => !f.reviewed).length} left)`);
}

function togglePlay() {
  if (S.playing) { clearInterval(S.playing); S.playing = null; $("#play").textContent = "Play"; return; }
  $("#play").textContent = "Pause";
  S.playing = setInterval(() => {
    if (S.index >= S.state.frames.length - 1) { togglePlay(); return; }
    show(S.index + 1);
  }, 1000 / S.state.fps);
}

function setReviewed(value) {
  frameEdit("reviewed", {reviewed: value}, value ? "reviewed" : "not reviewed");
}
function clearPrompts() {
  frameEdit("clear_prompts", {}, "clear clicks", {confirmLabel: "Erase the mask"});
}
function cycleOpacity() {
  const next = OPACITIES.find((v) => v > S.opacity + 1e-6);
  setOpacity(next === undefined ? OPACITIES[0] : next);
  say(`mask opacity ${Math.round(S.opacity * 100)}%`);
}

// --- view state across reloads ---------------------------------------------------------------
function viewKey() { return `refvps-annotate:${S.state.clip_id}:${S.state.width}x${S.state.height}`; }
let saveTimer = null;
function saveView() {
  if (!S.state || !S.restored) return;
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    const v = {frame: frameName(), tool: S.tool, size: S.size, opacity: S.opacity, mode: S.mode,
               colour: S.colour, zoom: S.zoom, panX: S.panX, panY: S.panY};
    try { localStorage.setItem(viewKey(), JSON.stringify(v)); } catch (e) { /* private mode */ }
  }, 150);
}
function restoreView() {
  let v = null;
  try { v = JSON.parse(localStorage.getItem(viewKey()) || "null"); } catch (e) { v = null; }
  if (!v) return 0;
  S.size = v.size || S.size; $("#size").value = S.size;
  if (typeof v.opacity === "number") { S.opacity = v.opacity; $("#opacity").value = Math.round(v.opacity * 100); }
  if (MODES.includes(v.mode)) { S.mode = v.mode; $("#mode").value = v.mode; }
  if (v.colour) { S.colour = v.colour; $("#colour").value = v.colour; }
  S.tool = v.tool || S.tool;
  if (v.zoom > 1) { S.zoom = v.zoom; S.panX = v.panX; S.panY = v.panY; }
  const i = S.state.frames.indexOf(v.frame);
  return i < 0 ? 0 : i;
}

// --- keys and controls -----------------------------------------------------------------------
document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input:not([type=range]):not([type=checkbox]), textarea, select")) return;
  if (!S.state) return;
  const k = ev.key;
  const ctrl = ev.ctrlKey || ev.metaKey;
  if (S.confirming && (k === "Escape" || k === "Enter")) { S.confirming(k === "Enter"); ev.preventDefault(); return; }
  let handled = true;
  if (ctrl && (k === "z" || k === "Z")) undoRedo(ev.shiftKey ? "redo" : "undo");
  else if (ctrl && k === "y") undoRedo("redo");
  else if (ctrl) handled = false;
  else if (ev.shiftKey && k.startsWith("Arrow")) {
    const d = 60;
    panBy({ArrowLeft: d, ArrowRight: -d, ArrowUp: 0, ArrowDown: 0}[k], {ArrowUp: d, ArrowDown: -d, ArrowLeft: 0, ArrowRight: 0}[k]);
  }
  else if (k === "ArrowRight") annoStep(1);
  else if (k === "ArrowLeft") annoStep(-1);
  else if (k === ".") show(S.index + 1);
  else if (k === ",") show(S.index - 1);
  else if (k === "n" || k === "N") nextUnreviewed();
  else if (k === "k" || k === "K") togglePlay();
  else if (k === "a" || k === "A") setTool("click");
  else if (k === "x" || k === "X") setTool("box");
  else if (k === "b" || k === "B") setTool("brush");
  else if (k === "e" || k === "E") setTool("eraser");
  else if (k === "i" || k === "I") setTool("ignore");
  else if (k === "u" || k === "U") setTool("unignore");
  else if (k === "[") setSize(S.size - 2);
  else if (k === "]") setSize(S.size + 2);
  else if (k === "+" || k === "=") zoomAt(1.25);
  else if (k === "-") zoomAt(0.8);
  else if (k === "0") { S.zoom = 1; applyView(); draw(); saveView(); }
  else if (k === "o" || k === "O") cycleOpacity();
  else if (k === "m" || k === "M") { setMode(MODES[(MODES.indexOf(S.mode) + 1) % MODES.length]); say(`mask shown as ${$("#mode").selectedOptions[0].text}`); }
  else if (k === "p") propagate("forward");
  else if (k === "P") propagate("backward");
  else if (k === "Escape") cancelJob();
  else if (k === "r" || k === "R") { const a = annoFrame(); if (a) setReviewed(!a.reviewed); else say("reviewed: not an annotation frame", true); }
  else if (k === " ") {
    const a = annoFrame();
    if (a) { setReviewed(true); annoStep(1); } else say("reviewed: not an annotation frame", true);
  }
  else if (k === "Backspace") clearPrompts();
  else if (k === "Delete" && ev.shiftKey) frameEdit("clear", {}, "no target");
  else handled = false;
  if (handled) ev.preventDefault();
});

document.querySelectorAll("[data-tool]").forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
$("#size").oninput = (ev) => setSize(Number(ev.target.value));
$("#opacity").oninput = (ev) => setOpacity(Number(ev.target.value) / 100);
$("#mode").onchange = (ev) => setMode(ev.target.value);
$("#colour").onchange = (ev) => { S.colour = ev.target.value; buildLayers(); draw(); saveView(); };
$("#zoom-in").onclick = () => zoomAt(1.25);
$("#zoom-out").onclick = () => zoomAt(0.8);
$("#zoom-fit").onclick = () => { S.zoom = 1; applyView(); draw(); saveView(); };
$("#scrubber").oninput = (ev) => show(Number(ev.target.value));
$("#play").onclick = togglePlay;
$("#next-unreviewed").onclick = nextUnreviewed;
document.querySelectorAll("[data-direction]").forEach((b) => {
  b.onclick = () => { hidePlan(); propagate(b.dataset.direction); };
  b.onmouseenter = b.onfocus = () => showPlan(b.dataset.direction);
  b.onmouseleave = b.onblur = hidePlan;
});
$("#cancel").onclick = cancelJob;
$("#undo").onclick = () => undoRedo("undo");
$("#redo").onclick = () => undoRedo("redo");
$("#reviewed").onchange = (ev) => setReviewed(ev.target.checked);
$("#clear-prompts").onclick = clearPrompts;
$("#clear-frame").onclick = () => frameEdit("clear", {}, "no target");
document.querySelectorAll("[data-exp], #concept").forEach((el) => {
  el.addEventListener("input", () => { saveMetaSoon(); clearFieldErrors(true); });
  el.addEventListener("change", saveMeta);
});
$("#export").onclick = () => exportClip();

(async () => {
  try {
    S.state = await api("/api/state");
  } catch (e) {
    if (!(e instanceof OfflineError)) say(e.message, true);
    return;
  }
  $("#clip").textContent = `${S.state.clip_id}  ${S.state.width}x${S.state.height}, ` +
    `${S.state.frames.length} frames at ${S.state.fps} fps, ${S.state.anno_frames.length} annotation frames`;
  $("#backend").textContent = `backend: ${S.state.backend}`;
  $("#scrubber").max = S.state.frames.length - 1;
  fillMeta();
  const index = restoreView();
  S.restored = true;
  setTool(S.tool);
  applyView();
  await show(index);
  if (S.state.job && S.state.job.state === "running") { S.job = S.state.job; followJob(); }
  document.body.dataset.ready = "1";
})();

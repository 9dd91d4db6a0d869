// Hark web console: upload recordings, follow their jobs, read a transcript while listening to it.
// Plain browser JavaScript with no dependencies, so the page works offline and needs no build step.
// Every call goes to the public /v1 API with the key the user entered; the page has no powers of its own.
"use strict";

const EMOTION_COLORS = {
  neutral: "#9aa3b2", happy: "#f2a900", sad: "#3f7fd8", angry: "#d93b30",
  fearful: "#8a5cc7", disgusted: "#3c9a5f", surprised: "#e0609b",
};
const SPEAKER_COLORS = ["#2f6fdd", "#e07b1f", "#2a9d6f", "#c2417a", "#7b5cd6", "#8c6d2c", "#1f9fb4", "#b84a3a"];
const FINISHED = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 1500;
const $ = (sel) => document.querySelector(sel);

const state = { key: localStorage.getItem("hark.key") || "", jobs: new Map(), openJob: null, utterances: [] };

// ---------------------------------------------------------------- API
async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.key}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let reason = `${response.status}`;
    try { const body = await response.json(); reason = body.error?.message || body.message || reason; } catch (_) { /* not JSON */ }
    throw new Error(reason);
  }
  return response;
}
const apiJson = async (path, options) => (await api(path, options)).json();

function toast(message) {
  const el = $("#toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
}

// ---------------------------------------------------------------- formatting
function clock(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    // Styles through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
function svgEl(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// ---------------------------------------------------------------- key
function useKey(key) {
  state.key = key.trim();
  localStorage.setItem("hark.key", state.key);
  $("#key-state").textContent = state.key ? "key set" : "no key";
  refreshJobs();
}

// ---------------------------------------------------------------- upload
function uploadFile(file) {
  const item = el("li", {}, el("span", {}, `${file.name} `), el("progress", { max: "1", value: "0" }));
  $("#uploads").prepend(item);
  const threshold = Number(document.body.dataset.directUploadBytes || Infinity);
  if (file.size >= threshold) { uploadDirect(file, item); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("options", JSON.stringify(speakerOptions()));
  // XMLHttpRequest rather than fetch: it reports upload progress.
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  xhr.setRequestHeader("Authorization", `Bearer ${state.key}`);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) item.querySelector("progress").value = e.loaded / e.total; };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* keep empty */ }
    if (xhr.status >= 200 && xhr.status < 300) {
      item.querySelector("progress").value = 1;
      item.append(el("span", { class: "muted" }, " uploaded"));
      upsertJob(body);
    } else {
      item.append(el("span", { class: "status-failed" }, ` ${body.error?.message || xhr.status}`));
    }
  };
  xhr.onerror = () => item.append(el("span", { class: "status-failed" }, " network error"));
  xhr.send(form);
}

function speakerOptions() {
  const speakers = $("#num-speakers").value;
  const language = $("#language").value.trim();
  return { ...(speakers ? { num_speakers: Number(speakers) } : {}), ...(language ? { language } : {}) };
}

// PUT one part to its presigned S3 URL with XMLHttpRequest (for progress); resolves to its ETag.
function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status < 300 && xhr.getResponseHeader("ETag")
      ? resolve(xhr.getResponseHeader("ETag")) : reject(new Error(`part upload answered ${xhr.status}`)));
    xhr.onerror = () => reject(new Error("network error (is the bucket's CORS set for this page?)"));
    xhr.send(blob);
  });
}

// Large files go straight to S3 through a presigned multipart upload: the API only signs the part
// URLs and completes the upload, so the bytes never pass through the web process.
async function uploadDirect(file, item) {
  const bar = item.querySelector("progress");
  item.dataset.path = "direct";
  try {
    const plan = await apiJson("/v1/uploads", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ filename: file.name, size: file.size, options: speakerOptions() }),
    });
    if (!plan.upload_id) { upsertJob(plan); item.append(el("span", { class: "muted" }, " already submitted")); return; }
    const parts = [];
    let done = 0;
    for (const part of plan.parts) {
      const start = (part.part_number - 1) * plan.part_size;
      const blob = file.slice(start, Math.min(file.size, start + plan.part_size));
      const etag = await putPart(part.url, blob, (loaded) => { bar.value = (done + loaded) / file.size; });
      done += blob.size;
      parts.push({ part_number: part.part_number, etag });
    }
    const job = await apiJson(`/v1/uploads/${plan.upload_id}/complete`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ parts }),
    });
    bar.value = 1;
    item.append(el("span", { class: "muted" }, " uploaded (direct)"));
    upsertJob(job);
  } catch (err) {
    item.append(el("span", { class: "status-failed" }, ` ${err.message}`));
  }
}

function setUpDropzone() {
  const zone = $("#dropzone");
  for (const type of ["dragenter", "dragover"]) zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); [...e.dataTransfer.files].forEach(uploadFile); });
  $("#file-input").addEventListener("change", (e) => { [...e.target.files].forEach(uploadFile); e.target.value = ""; });
}

// ---------------------------------------------------------------- jobs
function upsertJob(job) {
  if (!job || !job.id) return;
  state.jobs.set(job.id, job);
  renderJobs();
}

async function refreshJobs() {
  if (!state.key) return;
  try {
    const body = await apiJson("/v1/jobs?limit=50");
    for (const job of body.jobs) state.jobs.set(job.id, job);
    renderJobs();
  } catch (err) { toast(`Could not list jobs: ${err.message}`); }
}

async function pollUnfinished() {
  for (const job of [...state.jobs.values()].filter((j) => !FINISHED.has(j.status))) {
    try { upsertJob(await apiJson(`/v1/jobs/${job.id}`)); } catch (_) { /* next round */ }
  }
  setTimeout(pollUnfinished, POLL_MS);
}

function renderJobs() {
  const body = $("#jobs tbody");
  const jobs = [...state.jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  body.replaceChildren(...jobs.map((job) => {
    const p = job.progress || {};
    const fraction = p.fraction ?? (job.status === "done" ? 1 : 0);
    const eta = p.eta_s != null && !FINISHED.has(job.status) ? ` · ETA ${clock(p.eta_s)}` : "";
    const row = el("tr", { "data-job": job.id, "data-status": job.status, onclick: () => openJob(job.id) },
      el("td", {}, job.filename || job.id.slice(0, 8)),
      el("td", { class: `status status-${job.status}` }, job.status, job.error ? ` (${job.error.code})` : ""),
      el("td", {}, el("progress", { max: "1", value: String(fraction) }), el("span", { class: "muted" }, `${Math.round(fraction * 100)} %${eta}`)),
      el("td", {}, clock(job.duration_s)),
      el("td", { class: "muted" }, job.created_at ? new Date(job.created_at).toLocaleString() : ""));
    return row;
  }));
  $("#jobs-empty").hidden = jobs.length > 0;
}

// ---------------------------------------------------------------- transcript
function speakerColor(doc) {
  const labels = doc.speakers.map((s) => s.label);
  return (label) => SPEAKER_COLORS[Math.max(0, labels.indexOf(label)) % SPEAKER_COLORS.length];
}

async function openJob(jobId) {
  const job = state.jobs.get(jobId);
  if (!job || job.status !== "done") { toast(job ? `This job is ${job.status}.` : "Unknown job"); return; }
  const doc = await apiJson(`/v1/jobs/${jobId}/transcript?format=json`);
  state.openJob = jobId;
  $("#transcript-panel").hidden = false;
  $("#transcript-title").textContent = `Transcript — ${job.filename || jobId}`;
  const color = speakerColor(doc);
  renderSpeakers(doc, color);
  renderExports(jobId, doc.recording || "transcript");
  renderUtterances(doc, color);
  renderEmotionPlot(doc, color);
  renderEmotionTimeline(doc);
  renderArousal(doc, color);
  try {
    const media = await apiJson(`/v1/jobs/${jobId}/media`);
    $("#player").src = media.url;
  } catch (err) { toast(`No audio: ${err.message}`); }
  $("#transcript-panel").scrollIntoView({ behavior: "smooth" });
}

function renderSpeakers(doc, color) {
  $("#speakers").replaceChildren(...doc.speakers.map((s) =>
    el("span", { class: "speaker", "data-speaker": s.label },
      el("span", { class: "swatch", style: `background:${color(s.label)}` }),
      // A speaker named from an enrolled voice shows the person and the match score (docs/api.md "Voices").
      s.person ? `${s.person} (${s.label}, ${s.person_source === "manual" ? "set by hand" : `match ${s.person_score.toFixed(2)}`})`
        + ` · ${clock(s.speech_s)} · ${s.turns} turns` : `${s.label} · ${clock(s.speech_s)} · ${s.turns} turns`)));
}

function renderExports(jobId, stem) {
  const formats = ["json", "srt", "vtt", "txt", "rttm"];
  $("#exports").replaceChildren("Download: ", ...formats.map((fmt) =>
    el("button", { type: "button", "data-format": fmt, onclick: () => download(jobId, fmt, `${stem}.${fmt}`) }, fmt)));
}

async function download(jobId, fmt, name) {
  // Exports need the API key, which a plain link cannot carry: fetch, then hand the browser a blob.
  const blob = await (await api(`/v1/jobs/${jobId}/transcript?format=${fmt}`)).blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function renderUtterances(doc, color) {
  state.utterances = doc.utterances;
  $("#utterances").replaceChildren(...doc.utterances.map((u, i) => {
    const badge = u.emotion ? [el("span", { class: "emotion", style: `background:${EMOTION_COLORS[u.emotion] || "#777"}` }, u.emotion)] : [];
    if (u.language) badge.unshift(el("span", { class: "lang", title: "language" }, u.language));
    return el("li", { "data-index": String(i), "data-start": String(u.start), style: `border-left-color:${color(u.speaker)}`,
                      onclick: () => { const p = $("#player"); p.currentTime = u.start; p.play().catch(() => {}); } },
      el("span", { class: "time" }, clock(u.start)), el("span", { class: "who", style: `color:${color(u.speaker)}` }, u.person || u.speaker), u.text, ...badge);
  }));
  $("#languages").textContent = (doc.languages || []).length ? `Languages: ${doc.languages.join(", ")}` : "";
  const sources = [...new Set(doc.utterances.map((u) => u.emotion_source).filter(Boolean))];
  $("#emotion-source").textContent = sources.length ? `Emotion source: ${sources.join(", ")}` +
    (sources.includes("prosody+text") ? " (from the voice's prosody and the words' valence, not an emotion model)" : "") : "";
}

function followPlayback() {
  const t = $("#player").currentTime;
  const i = state.utterances.findIndex((u) => u.start <= t && t < u.end);
  document.querySelectorAll("#utterances li.current").forEach((li) => li.classList.remove("current"));
  if (i < 0) return;
  const li = document.querySelector(`#utterances li[data-index="${i}"]`);
  li.classList.add("current");
  li.scrollIntoView({ block: "nearest" });
}

// Share of each speaker's talk time per emotion, as one 100 % bar per speaker.
function emotionShares(doc) {
  const shares = new Map(doc.speakers.map((s) => [s.label, {}]));
  for (const u of doc.utterances) {
    const per = shares.get(u.speaker) || {};
    const emotion = u.emotion || "unknown";
    per[emotion] = (per[emotion] || 0) + Math.max(0, u.end - u.start);
    shares.set(u.speaker, per);
  }
  return shares;
}

function renderEmotionPlot(doc, color) {
  const svg = $("#emotion-plot");
  const shares = emotionShares(doc);
  const rowH = 26, labelW = 110, width = 720;
  svg.setAttribute("viewBox", `0 0 ${width} ${shares.size * rowH + 24}`);
  svg.replaceChildren();
  let y = 0;
  for (const [speaker, per] of shares) {
    const total = Object.values(per).reduce((a, b) => a + b, 0) || 1;
    const label = svgEl("text", { x: 0, y: y + 17, fill: color(speaker), "font-weight": "600" });
    label.textContent = speaker;
    svg.append(label);
    let x = labelW;
    for (const [emotion, seconds] of Object.entries(per).sort((a, b) => b[1] - a[1])) {
      const w = (seconds / total) * (width - labelW);
      const rect = svgEl("rect", { x, y: y + 4, width: w, height: rowH - 8, fill: EMOTION_COLORS[emotion] || "#777",
                                   "data-speaker": speaker, "data-emotion": emotion, "data-share": (seconds / total).toFixed(3) });
      const tip = svgEl("title");
      tip.textContent = `${speaker}: ${emotion} ${Math.round((seconds / total) * 100)} % (${seconds.toFixed(1)} s)`;
      rect.append(tip);
      svg.append(rect);
      x += w;
    }
    y += rowH;
  }
  let x = labelW;
  for (const [emotion, fill] of Object.entries(EMOTION_COLORS)) {
    svg.append(svgEl("rect", { x, y: y + 8, width: 10, height: 10, fill }));
    const t = svgEl("text", { x: x + 14, y: y + 17, "font-size": "11" });
    t.textContent = emotion;
    svg.append(t);
    x += 84;
  }
}

// Emotion over time: one lane per speaker, one block per utterance, coloured by its emotion.
function renderEmotionTimeline(doc) {
  const svg = $("#emotion-timeline");
  const lanes = doc.speakers.map((s) => s.label);
  const duration = doc.duration_s || Math.max(1, ...doc.utterances.map((u) => u.end));
  const laneH = 18, labelW = 110, width = 720;
  svg.setAttribute("viewBox", `0 0 ${width} ${lanes.length * laneH + 16}`);
  svg.replaceChildren();
  lanes.forEach((speaker, i) => {
    const t = svgEl("text", { x: 0, y: i * laneH + 13, "font-size": "11" });
    t.textContent = speaker;
    svg.append(t);
  });
  for (const u of doc.utterances) {
    const lane = lanes.indexOf(u.speaker);
    if (lane < 0) continue;
    const x = labelW + (u.start / duration) * (width - labelW);
    const w = Math.max(1, ((u.end - u.start) / duration) * (width - labelW));
    svg.append(svgEl("rect", { x, y: lane * laneH + 3, width: w, height: laneH - 6, fill: EMOTION_COLORS[u.emotion] || "#777" }));
  }
  const axis = svgEl("text", { x: width, y: lanes.length * laneH + 13, "font-size": "10", "text-anchor": "end", fill: "#6b7385" });
  axis.textContent = clock(duration);
  svg.append(axis);
}

// Arousal over time: one line per speaker, each point a stretch of speech at its arousal (z-score
// against that speaker's own baseline in the meeting, worker/affect.py); heated points are ringed.
const HEATED_Z = 1.5; // worker/affect.py HEATED_Z
function renderArousal(doc, color) {
  const svg = $("#arousal-plot");
  svg.replaceChildren();
  const points = doc.utterances.filter((u) => typeof u.arousal === "number");
  $("#arousal-note").textContent = points.length ? `0 is each speaker's usual voice; above ${HEATED_Z} (dashed) is heated.`
    : "No arousal: it needs the prosody emotion engine and a few segments per speaker.";
  if (!points.length) { svg.setAttribute("viewBox", "0 0 720 0"); return; }
  const duration = doc.duration_s || Math.max(1, ...doc.utterances.map((u) => u.end));
  const labelW = 40, width = 720, height = 160, top = 8, bottom = 20;
  const limit = Math.max(3, ...points.map((u) => Math.abs(u.arousal)));
  const x = (t) => labelW + (t / duration) * (width - labelW - 8);
  const y = (z) => top + ((limit - z) / (2 * limit)) * (height - top - bottom);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const z of [limit, HEATED_Z, 0, -limit]) {
    svg.append(svgEl("line", { x1: labelW, x2: width - 8, y1: y(z), y2: y(z), stroke: z === 0 ? "#9aa3b2" : "#d5d9e0",
                               "stroke-dasharray": z === HEATED_Z ? "4 3" : "" }));
    const t = svgEl("text", { x: labelW - 4, y: y(z) + 4, "font-size": "10", "text-anchor": "end", fill: "#6b7385" });
    t.textContent = z === 0 ? "0" : z.toFixed(1);
    svg.append(t);
  }
  for (const speaker of doc.speakers.map((s) => s.label)) {
    const mine = points.filter((u) => u.speaker === speaker);
    if (!mine.length) continue;
    svg.append(svgEl("polyline", { fill: "none", stroke: color(speaker), "stroke-width": 1.5, "data-speaker": speaker,
                                   points: mine.map((u) => `${x((u.start + u.end) / 2)},${y(u.arousal)}`).join(" ") }));
    for (const u of mine) {
      const dot = svgEl("circle", { cx: x((u.start + u.end) / 2), cy: y(u.arousal), r: u.heated ? 5 : 3, fill: color(speaker),
                                    stroke: u.heated ? EMOTION_COLORS.angry : "none", "stroke-width": 2,
                                    "data-speaker": speaker, "data-arousal": String(u.arousal), "data-heated": String(!!u.heated) });
      const tip = svgEl("title");
      tip.textContent = `${speaker} at ${clock(u.start)}: arousal ${u.arousal.toFixed(2)}${u.heated ? " (heated)" : ""} — ${u.text}`;
      dot.append(tip);
      svg.append(dot);
    }
  }
  const axis = svgEl("text", { x: width - 8, y: height - 4, "font-size": "10", "text-anchor": "end", fill: "#6b7385" });
  axis.textContent = clock(duration);
  svg.append(axis);
}

// ---------------------------------------------------------------- start
document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = state.key;
  $("#key-form").addEventListener("submit", (e) => { e.preventDefault(); useKey($("#api-key").value); });
  $("#refresh").addEventListener("click", refreshJobs);
  $("#player").addEventListener("timeupdate", followPlayback);
  setUpDropzone();
  if (state.key) useKey(state.key);
  pollUnfinished();
});

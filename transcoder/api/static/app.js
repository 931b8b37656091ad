"use strict";
// The farm's web page: submit videos, follow their transcodes, play the renditions.
// Data from the API reaches the page only through textContent and attributes, never as HTML.

const KEY_STORAGE = "transcoder.apiKey";
const POLL_MS = 2000;
const API_ROOT = new URL("../", document.baseURI); // the page lives at <root>/ui/
const ACTIVE = new Set(["pending", "queued", "encoding"]);

const $ = (id) => document.getElementById(id);
const cards = new Map(); // video id -> the card showing it
let pollTimer = null;
let pollRound = 0; // a newer refresh makes older ones drop their answers

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// -- talking to the API ------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function errorFrom(status, body) {
  const error = body && body.error;
  return new ApiError(status, error?.code || "error", error?.message || `HTTP ${status}`);
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${apiKey()}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, API_ROOT), init);
  } catch {
    throw new ApiError(0, "network", "the API did not answer; is the server running?");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw errorFrom(response.status, data);
  return data;
}

// -- messages ----------------------------------------------------------------------------

const HINTS = {
  401: "Enter an API key above.",
  403: "Check the API key above, or forget it and enter another.",
  413: "The file is larger than the server accepts.",
};

function showError(error, source = "action") {
  const box = $("message");
  const head = error.status ? `${error.status} ${error.code}: ` : "";
  const hint = HINTS[error.status] ? ` ${HINTS[error.status]}` : "";
  box.textContent = `${head}${sentence(error.message)}${hint}`;
  box.className = "error";
  box.dataset.status = String(error.status);
  box.dataset.source = source;
  box.hidden = false;
}

function showInfo(text) {
  const box = $("message");
  box.textContent = text;
  box.className = "info";
  box.dataset.status = "";
  box.dataset.source = "action";
  box.hidden = false;
}

function clearMessage(source) {
  const box = $("message");
  if (!source || box.dataset.source === source) box.hidden = true;
}

// -- formatting --------------------------------------------------------------------------

const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);
const percent = (fraction) => `${Math.floor((fraction || 0) * 100)}%`;

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Extrapolating from the first percent or two gives wild estimates; wait for a steadier one.
function progressText(item) {
  const steady = item.eta_seconds != null && item.progress >= 0.05;
  const eta = steady ? `, about ${duration(item.eta_seconds)} left` : "";
  return `${percent(item.progress)}${eta}`;
}

function mediaFacts(media) {
  if (!media) return "";
  const parts = [];
  if (media.width && media.height) parts.push(`${media.width}×${media.height}`);
  if (media.video_codec) parts.push(media.video_codec);
  if (media.duration) parts.push(`${Number(media.duration).toFixed(1)} s`);
  return parts.join(" · ");
}

function renditionFacts(r, player) {
  if (r.status === "error") return `failed: ${r.error || "unknown reason"}`;
  if (r.status === "running") return `encoding ${progressText(r)}`;
  if (r.status !== "succeeded") return r.status;
  const facts = [`${r.width}×${r.height}`, r.container, bytes(r.size_bytes)];
  if (!player.canPlayType(`video/${r.container}`)) facts.push("this browser cannot play it");
  return facts.filter(Boolean).join(" · ");
}

// Only http(s) links go into src attributes.
function safeUrl(value) {
  try {
    const url = new URL(value, document.baseURI);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// -- the list of videos ------------------------------------------------------------------

async function refresh() {
  clearTimeout(pollTimer);
  const round = ++pollRound;
  if (!apiKey()) return;
  try {
    const page = await api("GET", "videos?limit=50");
    if (round !== pollRound) return;
    renderList(page);
    clearMessage("poll");
  } catch (error) {
    if (round !== pollRound) return;
    showError(error, "poll");
    if (error.status === 401 || error.status === 403) return; // wait for another key
  }
  pollTimer = setTimeout(refresh, POLL_MS);
}

function renderList(page) {
  const list = $("videos");
  const seen = new Set();
  let previous = null;
  for (const video of page.items) {
    seen.add(video.id);
    const card = cards.get(video.id) || createCard(video.id);
    updateCard(card, video);
    // Newest first; cards already in place are not moved (moving a <video> pauses it).
    const wanted = previous ? previous.nextSibling : list.firstChild;
    if (card.root !== wanted) list.insertBefore(card.root, wanted);
    previous = card.root;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) removeCard(id, card);
  }
  const shown = page.items.length;
  $("videos-count").textContent = shown < page.total ? `(${shown} of ${page.total})` : `(${shown})`;
  $("videos-empty").hidden = page.total !== 0;
}

function clearList() {
  for (const [id, card] of cards) removeCard(id, card);
  $("videos-count").textContent = "";
  $("videos-empty").hidden = true;
}

function removeCard(id, card) {
  card.player.removeAttribute("src");
  card.player.load(); // stop fetching the file
  card.root.remove();
  cards.delete(id);
}

function createCard(id) {
  const root = $("video-template").content.firstElementChild.cloneNode(true);
  const part = (role) => root.querySelector(`[data-role="${role}"]`);
  const card = {
    id,
    root,
    rows: new Map(), // rendition id -> its list item
    video: null,
    poster: part("poster"),
    player: part("player"),
    name: part("name"),
    status: part("status"),
    facts: part("facts"),
    progressRow: part("progress-row"),
    progress: part("progress"),
    progressText: part("progress-text"),
    error: part("error"),
    renditions: part("renditions"),
    retry: root.querySelector('[data-action="retry"]'),
    remove: root.querySelector('[data-action="delete"]'),
  };
  root.dataset.videoId = id;
  card.retry.addEventListener("click", () => retryVideo(card));
  card.remove.addEventListener("click", () => deleteVideo(card));
  cards.set(id, card);
  return card;
}

function updateCard(card, video) {
  card.video = video;
  card.root.dataset.status = video.status;
  card.name.textContent = video.source_name || video.source_url || video.id;
  card.name.title = `id ${video.id}, profile ${video.profile}`;
  card.status.textContent = video.status;
  card.facts.textContent = mediaFacts(video.media);

  card.progressRow.hidden = !ACTIVE.has(video.status);
  card.progress.value = video.progress || 0;
  card.progressText.textContent = progressText(video);

  card.error.hidden = !video.error;
  card.error.textContent = video.error || "";
  card.retry.hidden = video.status !== "error";

  showPoster(card, video.preview);
  updateRenditions(card, video.renditions);
}

// Links are signed afresh on every answer: set the poster once, not on every poll.
function showPoster(card, preview) {
  if (card.poster.getAttribute("src") || !preview) return;
  const images = preview.images || [];
  const image = images.find((i) => i.kind === "poster") || images[0];
  const url = image && safeUrl(image.url);
  if (!url) return;
  card.poster.width = image.width;
  card.poster.height = image.height;
  card.poster.src = url;
  card.poster.hidden = !card.player.hidden;
  card.player.poster = url;
}

function updateRenditions(card, renditions) {
  const seen = new Set();
  for (const r of renditions) {
    seen.add(r.id);
    let row = card.rows.get(r.id);
    if (!row) {
      row = createRow(card, r);
      card.rows.set(r.id, row);
      card.renditions.append(row.item);
    }
    row.rendition = r;
    row.item.dataset.status = r.status;
    row.button.disabled = !(r.status === "succeeded" && safeUrl(r.url));
    row.facts.textContent = renditionFacts(r, card.player);
  }
  for (const [id, row] of card.rows) {
    if (!seen.has(id)) {
      row.item.remove();
      card.rows.delete(id);
    }
  }
}

function createRow(card, r) {
  const item = document.createElement("li");
  item.dataset.renditionName = r.name;
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.play = r.name;
  button.setAttribute("aria-pressed", "false");
  button.textContent = `▶ ${r.name}`;
  const facts = document.createElement("span");
  facts.className = "muted";
  item.append(button, " ", facts);
  const row = { item, button, facts, rendition: r };
  button.addEventListener("click", () => play(card, row));
  return row;
}

function play(card, row) {
  const url = safeUrl(row.rendition.url);
  if (!url) return;
  for (const other of card.rows.values()) {
    other.button.setAttribute("aria-pressed", String(other === row));
  }
  card.player.dataset.rendition = row.rendition.name;
  card.player.src = url;
  card.player.hidden = false;
  card.poster.hidden = true;
  card.player.play().catch(() => {}); // a refused autoplay still leaves the controls
}

// -- actions -----------------------------------------------------------------------------

async function retryVideo(card) {
  try {
    updateCard(card, await api("POST", `videos/${encodeURIComponent(card.id)}/retry`));
    showInfo(`Retrying what failed in ${card.name.textContent}.`);
  } catch (error) {
    showError(error);
  }
}

async function deleteVideo(card) {
  const name = card.name.textContent;
  if (!window.confirm(`Delete ${name} and all its renditions?`)) return;
  try {
    await api("DELETE", `videos/${encodeURIComponent(card.id)}`);
    removeCard(card.id, card);
    showInfo(`Deleted ${name}.`);
    refresh(); // drops any answer that was on its way and still listed the video
  } catch (error) {
    showError(error);
  }
}

function requireKey() {
  if (apiKey()) return true;
  showError(new ApiError(0, "no_key", "Enter an API key first"));
  return false;
}

function uploadFile(event) {
  event.preventDefault();
  const file = $("file-input").files[0];
  if (!file || !requireKey()) return;
  const form = new FormData();
  if ($("profile-select").value) form.append("profile", $("profile-select").value);
  form.append("file", file, file.name);

  const bar = $("upload-progress");
  const state = $("upload-state");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", new URL("videos", API_ROOT));
  xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    bar.value = e.loaded / e.total;
    state.textContent = `${percent(e.loaded / e.total)} of ${bytes(e.total)}`;
  });
  xhr.upload.addEventListener("load", () => {
    state.textContent = "uploaded; the server is checking the file…";
  });
  xhr.addEventListener("load", () => {
    uploading(false);
    if (xhr.status === 202) {
      state.textContent = "";
      $("upload-form").reset();
      showInfo(`${file.name} was accepted.`);
      refresh();
    } else {
      state.textContent = "failed";
      showError(errorFrom(xhr.status, xhr.response));
    }
  });
  xhr.addEventListener("error", () => {
    uploading(false);
    state.textContent = "failed";
    const why = "the upload was cut off; the server may have refused it (over the size limit?)";
    showError(new ApiError(0, "network", why));
  });
  uploading(true);
  xhr.send(form);
}

function uploading(busy) {
  $("upload-button").disabled = busy;
  $("upload-progress").hidden = !busy;
  if (busy) $("upload-progress").value = 0;
}

async function importUrl(event) {
  event.preventDefault();
  if (!requireKey()) return;
  const body = { url: $("url-input").value.trim() };
  if ($("profile-select").value) body.profile = $("profile-select").value;
  $("url-button").disabled = true;
  try {
    const video = await api("POST", "videos", body);
    $("url-form").reset();
    showInfo(`${video.source_name || body.url} was accepted; the farm is fetching it.`);
    refresh();
  } catch (error) {
    showError(error);
  } finally {
    $("url-button").disabled = false;
  }
}

async function loadProfiles() {
  const select = $("profile-select");
  try {
    const profiles = await api("GET", "profiles");
    select.replaceChildren(new Option("default", ""));
    for (const p of profiles) select.append(new Option(p.name, p.name));
  } catch {
    // refresh() reports the same failure
  }
}

// -- the key -----------------------------------------------------------------------------

function showKeyState() {
  const saved = Boolean(apiKey());
  $("key-state").textContent = saved ? "A key is saved in this browser." : "No key saved.";
  $("key-forget").disabled = !saved;
}

function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  $("key-input").value = "";
  clearMessage();
  showKeyState();
  loadProfiles();
  refresh();
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  clearTimeout(pollTimer);
  pollRound += 1;
  clearList();
  clearMessage();
  showKeyState();
}

function start() {
  $("key-form").addEventListener("submit", useKey);
  $("key-forget").addEventListener("click", forgetKey);
  $("upload-form").addEventListener("submit", uploadFile);
  $("url-form").addEventListener("submit", importUrl);
  showKeyState();
  if (apiKey()) {
    loadProfiles();
    refresh();
  } else {
    showInfo("Enter an API key to see and add videos.");
  }
}

start();

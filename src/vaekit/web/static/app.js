// vaekit explorer: the page keeps the latents; the server decodes them.
"use strict";

const state = { info: null, latents: { a: null, b: null }, busy: 0 };
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function call(path, body) {
  const options = body instanceof FormData
    ? { method: "POST", body }
    : { method: body === undefined ? "GET" : "POST", headers: { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body) };
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    if (typeof detail !== "string") detail = JSON.stringify(detail);
    showError(`${path}: ${detail}`);
    throw new Error(detail);
  }
  showError("");
  return response;
}
const json = async (path, body) => (await call(path, body)).json();

// An image with a download link under it.
function setImage(img, url, name) {
  img.src = url;
  let link = img.parentElement.querySelector("a.download");
  if (!link) {
    link = document.createElement("a");
    link.className = "download";
    link.textContent = "download";
    img.parentElement.appendChild(link);
  }
  link.href = url;
  link.download = name;
}

function figure(url, name, onClick) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  fig.appendChild(img);
  setImage(img, url, name);
  if (onClick) img.addEventListener("click", onClick);
  return fig;
}

function target() {
  return document.querySelector("input[name=target]:checked").value;
}

function setSlot(slot, original, reconstruction, latent) {
  state.latents[slot] = latent;
  setImage($(`original-${slot}`), original, `${slot}-input.png`);
  setImage($(`recon-${slot}`), reconstruction, `${slot}-reconstruction.png`);
  if (slot === "a") document.querySelector("input[name=target][value=b]").checked = true;
  updateMix();
  if (slot === "a") { updateEdit(); updateTraversal(); }
}

async function newSamples() {
  const seed = Math.floor(Math.random() * 2 ** 31);
  const temperature = parseFloat($("temperature").value);
  const result = await json("/api/samples", { count: 16, temperature, seed });
  const grid = $("samples");
  grid.replaceChildren(...result.images.map((url, i) =>
    figure(url, `sample-${seed}-${i}.png`, () => setSlot(target(), url, url, result.latents[i]))));
}

async function loadExamples() {
  const result = await json("/api/examples");
  $("examples-title").hidden = result.images.length === 0;
  $("examples").replaceChildren(...result.images.map((url, i) => figure(url, `example-${i}.png`, async () => {
    const slot = target();
    const encoded = await json(`/api/examples/${i}/encode`, {});
    setSlot(slot, encoded.original, encoded.reconstruction, encoded.latent);
  })));
}

async function upload(slot, input) {
  if (!input.files.length) return;
  const form = new FormData();
  form.append("file", input.files[0]);
  const encoded = await json("/api/encode", form);
  setSlot(slot, encoded.original, encoded.reconstruction, encoded.latent);
}

// Requests fired by sliders: only the newest answer is shown.
function latest(fn) {
  let counter = 0;
  return async (...args) => {
    const mine = ++counter;
    const result = await fn(...args);
    if (mine === counter && result) result();
  };
}

const updateMix = latest(async () => {
  const { a, b } = state.latents;
  const t = parseFloat($("mix").value);
  $("mix-value").textContent = t.toFixed(2);
  if (!a || !b) return null;
  const result = await json("/api/interpolate", { a, b, t, mode: $("mode").value });
  return () => setImage($("mixed"), result.image, `interpolation-${t.toFixed(2)}.png`);
});

const updateEdit = latest(async () => {
  const latent = state.latents.a;
  if (!latent || !state.info.attributes.length) return null;
  const strengths = {};
  for (const slider of document.querySelectorAll("#attribute-sliders input")) {
    strengths[slider.dataset.attribute] = parseFloat(slider.value);
    slider.nextElementSibling.textContent = parseFloat(slider.value).toFixed(1);
  }
  const result = await json("/api/edit", { latent, strengths });
  return () => setImage($("edited"), result.image, "edited.png");
});

const updateTraversal = latest(async () => {
  const latent = state.latents.a;
  if (!latent) return null;
  const what = $("traverse-what").value;
  const range = parseFloat($("traverse-range").value) || 3;
  const values = Array.from({ length: 9 }, (_, i) => -range + (2 * range * i) / 8);
  const body = what.startsWith("dim:")
    ? { latent, values, dimension: parseInt(what.slice(4), 10) }
    : { latent, values, attribute: what.slice(5) };
  const result = await json("/api/traverse", body);
  return () => $("traversal").replaceChildren(...result.images.map((url, i) =>
    figure(url, `traversal-${what.replace(":", "-")}-${values[i].toFixed(2)}.png`)));
});

async function downloadGif() {
  const { a, b } = state.latents;
  if (!a || !b) { showError("pick or upload both A and B first"); return; }
  const response = await call("/api/interpolation.gif", { a, b, mode: $("mode").value, frames: 16 });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = "interpolation.gif";
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function buildControls(info) {
  $("model-info").textContent =
    `${info.run}: ${info.architecture} VAE, ${info.image_size}px, latent ${info.latent_shape.join("x")}`;
  $("no-attributes").hidden = info.attributes.length > 0;
  $("edited").parentElement.hidden = info.attributes.length === 0;
  $("attribute-sliders").replaceChildren(...info.attributes.map((name) => {
    // names come from data files and shared models: set as text, never parsed as markup
    const label = document.createElement("label");
    const title = document.createElement("span");
    title.textContent = name;
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: "-3", max: "3", step: "0.1", value: "0" });
    slider.dataset.attribute = name;
    slider.setAttribute("aria-label", name);
    const shown = document.createElement("output");
    shown.textContent = "0.0";
    slider.addEventListener("input", updateEdit);
    label.append(title, slider, shown);
    return label;
  }));
  const options = [
    ...info.attributes.map((name) => [`attr:${name}`, `attribute ${name}`]),
    ...Array.from({ length: Math.min(info.latent_size, 64) }, (_, i) => [`dim:${i}`, `dimension ${i}`]),
  ];
  $("traverse-what").replaceChildren(...options.map(([value, text]) => new Option(text, value)));
}

async function start() {
  state.info = await json("/api/info");
  buildControls(state.info);
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = parseFloat($("temperature").value).toFixed(2);
  });
  $("temperature").addEventListener("change", newSamples);
  $("new-samples").addEventListener("click", newSamples);
  $("upload-a").addEventListener("change", (e) => upload("a", e.target));
  $("upload-b").addEventListener("change", (e) => upload("b", e.target));
  $("mix").addEventListener("input", updateMix);
  $("mode").addEventListener("change", updateMix);
  $("gif").addEventListener("click", downloadGif);
  $("traverse-what").addEventListener("change", updateTraversal);
  $("traverse-range").addEventListener("change", updateTraversal);
  await newSamples();
  await loadExamples();
  document.body.dataset.ready = "true";
}

start().catch((err) => showError(String(err)));

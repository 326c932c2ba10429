// The vaezoo web page: `vaezoo sample`'s pipeline in the browser, with onnxruntime-web (WebAssembly)
// loaded from this folder's ort/ (no CDN):
//     eps ~ N(0, T^2 I)  ->  prior_inverse (when the model has one; else z = eps)  ->  decoder  ->  pixels
// Noise: for seeds 0 .. model.noise.seeds-1 the page uses the numpy draws `vaezoo export-web` wrote to
// noise.bin (the exact eps `vaezoo sample --seed` uses), so those seeds show `vaezoo sample`'s numbers.
// Other seeds use a small JS generator (mulberry32 + Box-Muller): valid N(0, 1) noise, NOT numpy's stream.
// URL parameters: ?seed=S&temperature=T to start there; &test=1 writes the numbers into #result (JSON).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SCALE = 3;          // on-screen pixels per image pixel
const PATH_STEPS = 10;    // images along the interpolation, both ends included (as `vaezoo interpolate`)
const SLIDER_SPAN = 4;    // sliders cover [-4, 4] in the generation space

ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation (COOP/COEP headers), which static hosts rarely send

const state = { model: null, noise: null, sessions: {}, eps: null, n: 0, a: 0, b: 1, epsA: null, busy: false };

// ---------------------------------------------------------------- noise
function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function browserNormal(seed, count) {
  const u = mulberry32(seed), out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u())), phi = 2 * Math.PI * u();
    out[i] = r * Math.cos(phi);
    if (i + 1 < count) out[i + 1] = r * Math.sin(phi);
  }
  return out;
}

// eps for n samples: numpy's rows from noise.bin when written for this seed, else the JS generator.
// Multiplying then storing into a Float32Array rounds as numpy's (N(0,1) * T).astype(float32) does.
function noiseFor(seed, n, temperature) {
  const { noise: info, latent_dim: d } = state.model;
  const numpy = Number.isInteger(seed) && seed >= 0 && seed < info.seeds && n <= info.count;
  const base = numpy ? state.noise.subarray(seed * info.count * d, (seed * info.count + n) * d) : browserNormal(seed, n * d);
  const eps = new Float32Array(n * d);
  for (let i = 0; i < eps.length; i++) eps[i] = base[i] * temperature;
  return { eps, source: numpy ? "numpy" : "browser" };
}

// ---------------------------------------------------------------- the pipeline
function classOf(i) {  // conditional models cycle through the classes by sample index, as `vaezoo sample` does
  return i % state.model.labels.length;
}

async function generate(eps, classes) {
  const { latent_dim: d, labels, conditional, postprocess } = state.model;
  const n = eps.length / d;
  let z = eps;
  const inv = state.sessions.prior_inverse;
  if (inv) z = (await inv.run({ [inv.inputNames[0]]: new ort.Tensor("float32", eps, [n, d]) }))[inv.outputNames[0]].data;
  const dec = state.sessions.decoder;
  const feeds = { [dec.inputNames[0]]: new ort.Tensor("float32", z, [n, d]) };
  if (conditional) {
    const k = labels.length, y = new Float32Array(n * k);
    classes.forEach((c, i) => { y[i * k + c] = 1; });
    feeds[dec.inputNames[1]] = new ort.Tensor("float32", y, [n, k]);
  }
  const raw = (await dec.run(feeds))[dec.outputNames[0]].data;
  const out = new Float32Array(raw.length);  // the pipeline's postprocessing, as the graph's metadata names it
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    out[i] = postprocess === "sigmoid" ? 0.5 * (1 + Math.tanh(0.5 * v)) : postprocess === "clip01" ? Math.min(1, Math.max(0, v)) : v;
  }
  return out;
}

// ---------------------------------------------------------------- drawing (the layout of vaezoo's PNG grids)
function roundHalfEven(x) {  // numpy's np.round
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// images (n x C x H x W in [0, 1]) -> grid pixels (rows x cols x C uint8), white 2-pixel padding
function gridPixels(images, n, nrow) {
  const [c, h, w] = state.model.shape, pad = 2, rows = Math.ceil(n / nrow);
  const H = rows * (h + pad) + pad, W = nrow * (w + pad) + pad, px = new Uint8Array(H * W * c).fill(255);
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / nrow), k = i % nrow;
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = Math.fround(Math.min(1, Math.max(0, images[((i * c + ch) * h + y) * w + x])) * 255);
      px[((pad + r * (h + pad) + y) * W + pad + k * (w + pad) + x) * c + ch] = roundHalfEven(v);
    }
  }
  return { px, H, W, c };
}

function draw(canvas, grid) {
  const { px, H, W, c } = grid;
  canvas.width = W; canvas.height = H;
  canvas.style.width = `${W * SCALE}px`; canvas.style.height = `${H * SCALE}px`;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(W, H);
  for (let p = 0; p < H * W; p++) {
    for (let ch = 0; ch < 3; ch++) img.data[p * 4 + ch] = px[p * c + (c === 1 ? 0 : ch)];
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// ---------------------------------------------------------------- the three views
async function drawGrid(seedValue, temperatureValue) {
  // what `vaezoo sample` accepts: a seed >= 0 (an integer), a finite temperature >= 0; else the defaults
  const seed = Number.isInteger(seedValue) && seedValue >= 0 ? seedValue : 0;
  const temperature = Number.isFinite(temperatureValue) && temperatureValue >= 0 ? temperatureValue : 1;
  const n = state.model.noise.count, nrow = Math.ceil(Math.sqrt(n));
  const t0 = performance.now();
  const { eps, source } = noiseFor(seed, n, temperature);
  const images = await generate(eps, Array.from({ length: n }, (_, i) => classOf(i)));
  const grid = gridPixels(images, n, nrow);
  draw($("grid"), grid);
  const ms = performance.now() - t0;
  Object.assign(state, { eps, n, seed, temperature, source });
  $("noise-note").textContent = source === "numpy"
    ? `seed ${seed}: numpy's noise, the same samples as \`vaezoo sample ${state.model.id} --seed ${seed}\``
    : `seed ${seed}: the page's own generator (not numpy's stream); seeds 0-${state.model.noise.seeds - 1} match vaezoo sample`;
  $("timing").textContent = `${n} samples in ${ms.toFixed(1)} ms`;
  return { images, grid, ms, source };
}

function buildSliders() {
  const box = $("sliders");
  box.textContent = "";
  for (let j = 0; j < state.model.latent_dim; j++) {
    const label = document.createElement("span"), input = document.createElement("input"), value = document.createElement("span");
    label.textContent = `eps[${j}]`;
    Object.assign(input, { type: "range", min: -SLIDER_SPAN, max: SLIDER_SPAN, step: 0.01, id: `dim${j}` });
    input.addEventListener("input", () => { state.epsA[j] = Number(input.value); value.textContent = input.value; drawSingle(); });
    value.id = `dim${j}-value`;
    box.append(label, input, value);
  }
}

function selectA(i) {
  const d = state.model.latent_dim;
  state.a = i;
  state.epsA = state.eps.slice(i * d, (i + 1) * d);
  for (let j = 0; j < d; j++) {
    $(`dim${j}`).value = state.epsA[j];
    $(`dim${j}-value`).textContent = state.epsA[j].toFixed(2);
  }
}

async function drawSingle() {
  if (state.busy) { state.again = true; return null; }  // one decode at a time; the latest slider value wins
  state.busy = true;
  try {
    const images = await generate(state.epsA, [classOf(state.a)]);
    draw($("single"), gridPixels(images, 1, 1));
    return images;
  } finally {
    state.busy = false;
    if (state.again) { state.again = false; drawSingle(); }
  }
}

async function drawPath() {  // eps_t = a (1 - t) + b t, t = 0 .. 1 in PATH_STEPS steps (float32, as the pipeline)
  const d = state.model.latent_dim, eps = new Float32Array(PATH_STEPS * d);
  for (let s = 0; s < PATH_STEPS; s++) {
    const t = Math.fround(s / (PATH_STEPS - 1)), u = Math.fround(1 - t);
    for (let j = 0; j < d; j++) {
      eps[s * d + j] = Math.fround(Math.fround(state.eps[state.a * d + j] * u) + Math.fround(state.eps[state.b * d + j] * t));
    }
  }
  const images = await generate(eps, new Array(PATH_STEPS).fill(classOf(state.a)));
  draw($("path"), gridPixels(images, PATH_STEPS, PATH_STEPS));
  return images;
}

// ---------------------------------------------------------------- start
function b64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function main() {
  const t0 = performance.now();
  state.model = await (await fetch("model.json")).json();
  state.noise = new Float32Array(await (await fetch(state.model.noise.file)).arrayBuffer());
  for (const [part, file] of Object.entries(state.model.graphs)) {
    if (file) state.sessions[part] = await ort.InferenceSession.create(file, { executionProviders: ["wasm"] });
  }
  const loadMs = performance.now() - t0;
  const m = state.model;
  document.title = `vaezoo: ${m.id}`;
  $("title").textContent = m.id;
  $("about").textContent = `${m.latent_dim}-d latent, ${m.graphs.prior_inverse ? "prior_inverse + decoder" : "decoder (no prior_inverse: z = eps)"}` +
    `, onnxruntime-web ${m.ort_web} (WebAssembly), exported by vaezoo ${m.vaezoo}`;
  buildSliders();

  const seed = Number(params.get("seed") ?? 0), temperature = Number(params.get("temperature") ?? 1);
  $("seed").value = seed; $("temperature").value = temperature;
  const first = await drawGrid(seed, temperature);
  selectA(0); state.b = Math.min(1, state.n - 1);
  await drawSingle(); await drawPath();

  $("draw").addEventListener("click", async () => {
    await drawGrid(Number($("seed").value), Number($("temperature").value));
    selectA(Math.min(state.a, state.n - 1)); await drawSingle(); await drawPath();
  });
  $("grid").addEventListener("click", async (ev) => {
    const [, h, w] = m.shape, nrow = Math.ceil(Math.sqrt(state.n)), rect = $("grid").getBoundingClientRect();
    const x = (ev.clientX - rect.left) / SCALE, y = (ev.clientY - rect.top) / SCALE;
    const row = Math.floor((y - 2) / (h + 2)), col = Math.floor((x - 2) / (w + 2)), i = row * nrow + col;
    if (row < 0 || col < 0 || col >= nrow || i >= state.n) return;
    if (ev.shiftKey) state.b = i; else { selectA(i); await drawSingle(); }
    await drawPath();
  });

  if (params.get("test") === "1") {
    // the numbers behind the views, for tests/test_web.py: the grid, its pixels, the interpolation from
    // sample 0 to 1, and sample 0 with its eps[0] slider moved to 2
    const path = await drawPath();
    state.epsA[0] = 2; $("dim0").value = 2; $("dim0-value").textContent = "2.00";
    const single = await drawSingle();
    const repeats = Number(params.get("repeat") ?? 0), times = [];
    for (let r = 0; r < repeats; r++) times.push((await drawGrid(seed, temperature)).ms);
    const result = JSON.stringify({
      id: m.id, seed: state.seed, temperature: state.temperature, count: state.n, noise: first.source, load_ms: loadMs, grid_ms: first.ms, repeat_ms: times,
      images: b64(first.images), pixels: b64(first.grid.px), pixels_shape: [first.grid.H, first.grid.W, first.grid.c],
      path: b64(path), single: b64(single),
    });
    $("result").textContent = result;
    // &report=1: also POST it to the serving origin (benchmarks/web_render.py times the page in real
    // time this way; under --dump-dom's virtual time performance.now() stands still)
    if (params.get("report") === "1") await fetch("report", { method: "POST", body: result });
  }
}

main().catch((err) => {
  $("error").textContent = `error: ${err && err.message ? err.message : err}`;
  $("result").textContent = JSON.stringify({ error: String(err && err.message ? err.message : err) });
});

/**
 * GET /: the demo page. Pick an image and a model, and the three generations
 * run side by side on it (R-CNN, Fast R-CNN, Faster R-CNN: boxes, time,
 * regions, stage timings), one POST /v1/detect per generation per click. Each
 * request asks for the model's own evaluation threshold, so the page's
 * threshold slider and class filter act on what it already has: no new
 * request. Click a detection for why (POST /v1/explain: its occlusion map
 * over the image, its source region and provenance); pick a backbone layer
 * for its feature maps (POST /v1/features) beside the first filters. No build step, no external assets; the page's text comes from the
 * server (model names, labels) and is set as text, never as markup.
 */

import { DEFAULT_MODEL } from '../model/package.js';
import { DISPLAY_SCORE_THRESHOLD } from '../options.js';

const STYLE = `
  :root { --ink: #1d2330; --muted: #5b6475; --line: #e3e6ec; --card: #fff; --bg: #f4f6fa; --accent: #3655d4; --bad: #b3261e; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1.2rem; padding: 1rem 1.5rem; background: var(--ink); color: #fff; }
  header h1 { margin: 0; font-size: 1.35rem; letter-spacing: .01em; }
  header p { margin: 0; color: #c5cbe0; flex: 1 1 20rem; }
  header nav a { color: #fff; margin-left: 1rem; font-size: .9rem; }
  .wrap { max-width: 1400px; margin: 0 auto; padding: 1rem 1.5rem 2rem; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .9rem 1.1rem; margin-bottom: 1rem; }
  #controls { display: grid; grid-template-columns: minmax(14rem, 1.3fr) repeat(3, auto); gap: .8rem 1.4rem; align-items: end; }
  #drop { border: 2px dashed #b8c0d4; border-radius: 8px; padding: .7rem .9rem; text-align: center; color: var(--muted); cursor: pointer; }
  #drop.over { border-color: var(--accent); background: #eef1fd; }
  #drop strong { color: var(--ink); }
  #image { display: block; margin: .35rem auto 0; max-width: 100%; }
  label.field { display: flex; flex-direction: column; gap: .25rem; font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
  select { font: inherit; padding: .35rem .5rem; border-radius: 6px; border: 1px solid #c8cedb; }
  fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .2rem; }
  fieldset legend { font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; margin-bottom: .25rem; }
  fieldset label { font-size: .95rem; }
  button#run { font: inherit; font-weight: 600; padding: .6rem 1.6rem; border: 0; border-radius: 8px; background: var(--accent); color: #fff; cursor: pointer; }
  button#run:disabled { background: #9aa6d8; cursor: progress; }
  #model-info h2 { margin: 0 0 .2rem; font-size: 1.05rem; }
  #model-info p { margin: .2rem 0; color: var(--muted); }
  #domain { color: var(--ink) !important; background: #fff6df; border-left: 4px solid #e0a800; padding: .4rem .6rem; border-radius: 4px; }
  #filters { display: flex; flex-wrap: wrap; gap: .8rem 2rem; align-items: center; }
  #threshold { width: min(22rem, 60vw); vertical-align: middle; }
  .chips { display: flex; flex-wrap: wrap; gap: .35rem; }
  .chip { font: inherit; font-size: .85rem; border: 1px solid var(--line); border-radius: 999px; padding: .15rem .65rem .15rem .45rem; background: #fff; cursor: pointer; display: inline-flex; align-items: center; gap: .35rem; }
  .chip[aria-pressed="false"] { opacity: .4; text-decoration: line-through; }
  .swatch { width: .8rem; height: .8rem; border-radius: 3px; display: inline-block; flex: none; }
  #status { min-height: 1.4em; color: var(--muted); margin: 0 0 .6rem; }
  #status.error { color: var(--bad); }
  #panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 360px), 1fr)); gap: 1rem; }
  .panel { margin: 0; display: flex; flex-direction: column; gap: .6rem; }
  .panel h2 { margin: 0; font-size: 1.1rem; }
  .panel h2 small { font-weight: normal; color: var(--muted); font-size: .8rem; margin-left: .3rem; }
  .view { display: grid; grid-template-columns: 1fr; gap: .6rem; }
  #panels.single .view { grid-template-columns: minmax(0, 3fr) minmax(12rem, 1fr); }
  canvas { width: 100%; height: auto; border-radius: 6px; background: #e9ecf2; display: block; }
  .summary { margin: 0; font-size: .9rem; color: var(--muted); }
  .summary b { color: var(--ink); }
  .panel.failed .summary { color: var(--bad); }
  ol.detections { list-style: none; margin: 0; padding: 0; max-height: 16rem; overflow: auto; font-size: .85rem; border-top: 1px solid var(--line); }
  #panels.single ol.detections { max-height: 34rem; border-top: 0; }
  ol.detections li { display: grid; grid-template-columns: auto 1fr auto; gap: .45rem; align-items: center; padding: .2rem .3rem; border-bottom: 1px solid #f0f1f5; cursor: default; }
  ol.detections li:hover, ol.detections li.hot { background: #eef1fd; }
  ol.detections .score { font-variant-numeric: tabular-nums; color: var(--muted); }
  .timings { display: grid; grid-template-columns: auto 1fr auto; gap: .15rem .5rem; align-items: center; font-size: .78rem; color: var(--muted); }
  .timings .bar { height: .6rem; border-radius: 3px; background: var(--accent); min-width: 1px; }
  .timings .ms { font-variant-numeric: tabular-nums; text-align: right; }
  ol.detections li { cursor: pointer; }
  ol.detections li.chosen { outline: 2px solid var(--accent); outline-offset: -2px; }
  #explain h2, #features h2 { margin: 0 0 .6rem; font-size: 1.1rem; }
  .explain-view { display: grid; grid-template-columns: minmax(0, 2fr) minmax(14rem, 1fr); gap: 1rem; align-items: start; }
  #provenance { display: grid; grid-template-columns: auto 1fr; gap: .2rem .8rem; margin: .6rem 0; font-size: .88rem; }
  #provenance dt { color: var(--muted); }
  #provenance dd { margin: 0; font-variant-numeric: tabular-nums; }
  .legend { font-size: .8rem; color: var(--muted); }
  .legend i { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; vertical-align: middle; margin: 0 .2rem; }
  #features .row { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end; margin-bottom: .8rem; }
  #features button { font: inherit; padding: .4rem 1rem; border-radius: 6px; border: 1px solid var(--accent); background: #fff; color: var(--accent); cursor: pointer; }
  .feature-images { display: grid; grid-template-columns: minmax(0, 3fr) minmax(10rem, 1fr); gap: 1rem; align-items: start; }
  .feature-images figure { margin: 0; }
  .feature-images img { max-width: 100%; display: block; image-rendering: pixelated; }
  .feature-images figcaption { font-size: .8rem; color: var(--muted); margin-top: .3rem; }
  @media (max-width: 760px) {
    .explain-view, .feature-images { grid-template-columns: 1fr; }
    #controls { grid-template-columns: 1fr 1fr; }
    #drop { grid-column: 1 / -1; }
    #panels.single .view { grid-template-columns: 1fr; }
    .wrap { padding: .8rem; }
  }
`;

const SCRIPT = `
const DISPLAY_THRESHOLD = ${DISPLAY_SCORE_THRESHOLD};
const DEFAULT_MODEL = ${JSON.stringify(DEFAULT_MODEL)};
const GENERATIONS = {
  rcnn: { title: 'R-CNN', note: '2014 · selective search, a CNN per warped region' },
  'fast-rcnn': { title: 'Fast R-CNN', note: '2015 · selective search, one CNN pass, RoI pooling' },
  'faster-rcnn': { title: 'Faster R-CNN', note: '2015 · RPN over anchors, RoIAlign' },
};
const $ = (id) => document.getElementById(id);
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}
const state = { models: [], model: null, file: null, bitmap: null, panels: new Map(), hidden: new Set() };

function colour(classId) { return 'hsl(' + ((classId * 137.5) % 360).toFixed(0) + ', 72%, 45%)'; }
function threshold() { return Number($('threshold').value); }
function visible(detections) { return detections.filter((d) => d.score > threshold() && !state.hidden.has(d.label)); }

function setStatus(text, error = false) { $('status').textContent = text; $('status').className = error ? 'error' : ''; }

function chooseModel() {
  const m = state.models.find((x) => x.name === $('model').value);
  state.model = m;
  state.hidden.clear();
  $('model-name').textContent = m.name;
  $('model-description').textContent = m.description;
  const labels = m.classes.slice(1);
  $('domain').textContent = 'This model detects only its ' + labels.length + ' classes, listed below' +
    (m.name === DEFAULT_MODEL ? ': synthetic shapes it was trained on. On a photo it finds those shapes, sometimes confidently; for photos, export a COCO model (README: "A COCO model from torchvision") and serve it with MODELS_DIR.' : '.');
  $('classes').replaceChildren(...labels.map((label, i) => {
    const chip = el('button', { type: 'button', className: 'chip', title: 'show or hide ' + label }, [el('span', { className: 'swatch' }), label]);
    chip.firstChild.style.background = colour(i + 1);
    chip.setAttribute('aria-pressed', 'true');
    chip.dataset.label = label;
    chip.addEventListener('click', () => {
      const shown = chip.getAttribute('aria-pressed') === 'true';
      chip.setAttribute('aria-pressed', String(!shown));
      if (shown) state.hidden.add(label); else state.hidden.delete(label);
      redraw();
    });
    return chip;
  }));
  for (const [name] of Object.entries(GENERATIONS)) {
    const box = $('gen-' + name);
    box.disabled = !m.pipelines.includes(name);
    box.checked = !box.disabled;
  }
  // The lowest the slider goes: the model's own evaluation threshold, what each request asks for.
  const floor = Math.min(...m.pipelines.map((p) => m.postprocess[p].scoreThreshold));
  $('threshold').min = String(floor);
  showThreshold();
  $('explain').hidden = true;
  loadFeatureViews(m).catch(() => setStatus('could not read the model (GET /v1/models/' + m.name + ')', true));
}

function showThreshold() { $('thresholdValue').value = threshold().toFixed(2); }

async function loadImage(file) {
  state.file = file;
  state.bitmap = await createImageBitmap(file).catch(() => null);
  $('run').disabled = !state.bitmap;
  if (!state.bitmap) setStatus('the browser cannot read ' + file.name + ' as an image; JPEG, PNG and WebP are accepted', true);
  else setStatus('Ready: press Detect.');
}

function makePanel(pipeline) {
  const g = GENERATIONS[pipeline];
  const canvas = el('canvas', { width: state.bitmap.width, height: state.bitmap.height });
  const list = el('ol', { className: 'detections' });
  const summary = el('p', { className: 'summary', textContent: 'running…' });
  const timings = el('div', { className: 'timings' });
  const figure = el('figure', { className: 'panel card' }, [
    el('h2', {}, [g.title, el('small', { textContent: g.note })]),
    el('div', { className: 'view' }, [canvas, list]),
    summary,
    timings,
  ]);
  figure.dataset.pipeline = pipeline;
  const panel = { pipeline, figure, canvas, list, summary, timings, result: null, hot: -1 };
  draw(panel);
  return panel;
}

function draw(panel) {
  const ctx = panel.canvas.getContext('2d');
  ctx.drawImage(state.bitmap, 0, 0);
  if (!panel.result) return;
  const line = Math.max(2, Math.round(Math.max(panel.canvas.width, panel.canvas.height) / 300));
  ctx.font = '600 ' + (6 * line + 4) + 'px system-ui, sans-serif';
  const shown = visible(panel.result.detections);
  shown.forEach((d, i) => {
    const [x1, y1, x2, y2] = d.box;
    ctx.lineWidth = i === panel.hot ? 2 * line : line;
    ctx.strokeStyle = colour(d.classId);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = d.label + ' ' + d.score.toFixed(2);
    const w = ctx.measureText(text).width + 2 * line;
    const h = 6 * line + 8;
    const ty = y1 - h < 0 ? y1 : y1 - h;
    ctx.fillStyle = colour(d.classId);
    ctx.fillRect(x1, ty, w, h);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + line, ty + h - line - 2);
  });
}

function fill(panel) {
  const r = panel.result;
  const shown = visible(r.detections);
  panel.list.replaceChildren(...shown.map((d, i) => {
    const swatch = el('span', { className: 'swatch' });
    swatch.style.background = colour(d.classId);
    const item = el('li', { title: '[' + d.box.map((v) => v.toFixed(1)).join(', ') + ']' }, [swatch, el('span', { className: 'label', textContent: d.label }), el('span', { className: 'score', textContent: d.score.toFixed(3) })]);
    item.addEventListener('mouseenter', () => { panel.hot = i; draw(panel); });
    item.addEventListener('mouseleave', () => { panel.hot = -1; draw(panel); });
    item.addEventListener('click', () => {
      document.querySelectorAll('ol.detections li.chosen').forEach((li) => li.classList.remove('chosen'));
      item.classList.add('chosen');
      explain(panel, d);
    });
    return item;
  }));
  panel.summary.replaceChildren(
    el('b', { textContent: String(shown.length) }), ' of ' + r.detections.length + ' detections shown · ',
    el('b', { className: 'total', textContent: Math.round(r.timings.total) + ' ms' }), ' · ',
    el('b', { className: 'regions', textContent: String(r.regions) }), ' regions scored',
  );
  draw(panel);
}

/** Stage timings as bars on one scale across the panels, so the generations compare at a glance. */
function chartTimings() {
  const done = [...state.panels.values()].filter((p) => p.result);
  const longest = Math.max(1, ...done.flatMap((p) => Object.entries(p.result.timings).filter(([k]) => k !== 'total').map(([, v]) => v)));
  for (const p of done) {
    p.timings.replaceChildren(...Object.entries(p.result.timings).filter(([k]) => k !== 'total').flatMap(([stage, ms]) => {
      const bar = el('div', { className: 'bar', title: stage + ': ' + ms.toFixed(1) + ' ms' });
      bar.style.width = (100 * ms / longest).toFixed(1) + '%';
      return [el('span', { className: 'stage', textContent: stage }), el('div', {}, [bar]), el('span', { className: 'ms', textContent: ms.toFixed(0) + ' ms' })];
    }));
  }
}

/** The occlusion grid for the image: a patch a tenth of its shorter side, non-overlapping (about a hundred backbone passes). */
function occlusionGrid() {
  const patch = Math.max(8, Math.min(128, Math.round(Math.min(state.bitmap.width, state.bitmap.height) / 10)));
  return { patch, stride: patch };
}

let explaining = 0;
async function explain(panel, d) {
  const token = ++explaining;
  $('explain').hidden = false;
  $('explain-title').textContent = d.label + ' ' + d.score.toFixed(3) + ' · ' + GENERATIONS[panel.pipeline].title;
  $('explain-summary').textContent = 'greying the image square by square and re-scoring the box…';
  showProvenance(d.provenance);
  const canvas = $('explain-canvas');
  canvas.width = state.bitmap.width;
  canvas.height = state.bitmap.height;
  drawExplanation(canvas, d, null);
  const { patch, stride } = occlusionGrid();
  const query = new URLSearchParams({ model: state.model.name, pipeline: panel.pipeline, box: d.box.map((v) => v.toFixed(2)).join(','), label: d.label, patch: String(patch), stride: String(stride) });
  const response = await fetch('/v1/explain?' + query, { method: 'POST', headers: { 'content-type': state.file.type || 'application/octet-stream' }, body: state.file });
  const body = await response.json();
  if (token !== explaining) return;
  if (!response.ok) {
    $('explain-summary').textContent = body.code + ': ' + body.message;
    return;
  }
  const map = body.maps[0];
  drawExplanation(canvas, d, { map, grid: body.grid });
  $('explain-summary').replaceChildren(
    'Score ', el('b', { textContent: map.baseline.toFixed(3) }), ' for the box as it is; the largest drop, ',
    el('b', { className: 'peak', textContent: map.peak.drop.toFixed(3) }), ', with the square at [' + map.peak.box.join(', ') + '] greyed. ',
    el('b', { className: 'passes', textContent: String(body.cost.passes) }), ' backbone passes, ' + Math.round(body.cost.ms) + ' ms.',
  );
}

/** The image, the occlusion map over it (red: greying the square lowered the score; blue: raised it), the box and its source region (dashed). */
function drawExplanation(canvas, d, shown) {
  const ctx = canvas.getContext('2d');
  ctx.drawImage(state.bitmap, 0, 0);
  if (shown) {
    const { map, grid } = shown;
    const most = Math.max(1e-6, ...map.drops.map(Math.abs));
    // Overlapping squares add their colour: divide by how many cover a pixel.
    const overlap = Math.pow(Math.ceil(grid.patch / grid.stride), 2);
    map.drops.forEach((drop, i) => {
      const x = grid.xs[i % grid.columns], y = grid.ys[Math.floor(i / grid.columns)];
      ctx.fillStyle = (drop > 0 ? 'rgba(230,40,40,' : 'rgba(40,40,230,') + (0.7 * Math.abs(drop) / most / overlap).toFixed(3) + ')';
      ctx.fillRect(x, y, grid.patch, grid.patch);
    });
  }
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  ctx.lineWidth = line;
  const region = d.provenance && d.provenance.region;
  if (region) {
    ctx.setLineDash([3 * line, 2 * line]);
    ctx.strokeStyle = '#fff';
    ctx.strokeRect(region[0], region[1], region[2] - region[0], region[3] - region[1]);
    ctx.setLineDash([]);
  }
  ctx.strokeStyle = colour(d.classId);
  ctx.strokeRect(d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]);
}

const fmt = (b) => '[' + b.map((v) => v.toFixed(1)).join(', ') + ']';
function showProvenance(p) {
  const rows = [];
  if (p) {
    rows.push(['source region', fmt(p.region)], ['rank', String(p.rank)]);
    const s = p.source;
    if (s.method === 'selective-search') rows.push(['proposed by', 'selective search'], ['strategy', s.colourSpace + ', k ' + s.k + ', ' + s.similarities], ['hierarchy', s.level === 0 ? 'a region of the initial segmentation' : 'merge ' + s.level + ' of ' + s.merges]);
    else if (s.method === 'caller') rows.push(['proposed by', 'the caller (box ' + s.index + ')']);
    else {
      rows.push(['proposed by', 'the RPN, objectness ' + s.objectness.toFixed(3)], ['anchor', 'level ' + s.anchor.level + ', size ' + s.anchor.size + ', ratio ' + s.anchor.aspectRatio + ', cell (' + s.anchor.cell.join(', ') + ')'], ['anchor box', fmt(s.anchor.box)]);
    }
    if (p.scale) rows.push(['test scale', p.scale.minSize + ' to ' + p.scale.maxSize + (p.scale.flip ? ', mirrored' : '')]);
  }
  $('provenance').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v })]));
}

/** The model's backbone layers and its first filters, for the feature views. */
async function loadFeatureViews(m) {
  $('layer-maps').removeAttribute('src');
  $('layer-caption').textContent = '';
  const response = await fetch('/v1/models/' + encodeURIComponent(m.name));
  const body = await response.json();
  const layers = response.ok ? body.featureLayers : [];
  $('layer').replaceChildren(...layers.map((l, i) => new Option((i + 1) + '. ' + l.type + ' ' + l.outputShape.join('x') + ' (' + l.name + ')', l.name)));
  $('show-layer').disabled = layers.length === 0;
  $('first-filters').src = '/v1/models/' + encodeURIComponent(m.name) + '/filters';
}

async function showLayer() {
  if (!state.file) return setStatus('choose an image first: the feature maps are its activations', true);
  const layer = $('layer').value;
  $('layer-caption').textContent = 'running the backbone…';
  const query = new URLSearchParams({ model: state.model.name, layer, channels: '8' });
  const response = await fetch('/v1/features?' + query, { method: 'POST', headers: { 'content-type': state.file.type || 'application/octet-stream' }, body: state.file });
  if (!response.ok) {
    const body = await response.json();
    $('layer-caption').textContent = body.code + ': ' + body.message;
    return;
  }
  $('layer-maps').src = URL.createObjectURL(await response.blob());
  $('layer-caption').textContent = 'The 8 strongest channels of ' + layer + ' (channels ' + response.headers.get('x-channels') + '), each scaled to its own maximum.';
}

function redraw() {
  for (const p of state.panels.values()) if (p.result) fill(p);
}

async function detect(panel) {
  const m = state.model;
  const query = new URLSearchParams({ model: m.name, pipeline: panel.pipeline, scoreThreshold: String(m.postprocess[panel.pipeline].scoreThreshold), provenance: 'true' });
  const response = await fetch('/v1/detect?' + query, { method: 'POST', headers: { 'content-type': state.file.type || 'application/octet-stream' }, body: state.file });
  const body = await response.json();
  if (!response.ok) throw new Error(body.code + ': ' + body.message);
  panel.result = body;
  fill(panel);
  chartTimings();
}

async function run(event) {
  event.preventDefault();
  if (!state.bitmap || !state.model) return;
  const chosen = Object.keys(GENERATIONS).filter((p) => $('gen-' + p).checked);
  if (chosen.length === 0) return setStatus('pick at least one generation', true);
  state.panels = new Map(chosen.map((p) => [p, makePanel(p)]));
  $('panels').className = chosen.length === 1 ? 'single' : '';
  $('panels').replaceChildren(...[...state.panels.values()].map((p) => p.figure));
  $('run').disabled = true;
  setStatus('detecting with ' + chosen.map((p) => GENERATIONS[p].title).join(', ') + '…');
  const started = performance.now();
  const outcomes = await Promise.allSettled([...state.panels.values()].map((p) => detect(p).catch((err) => {
    p.figure.classList.add('failed');
    p.summary.textContent = err.message;
    throw err;
  })));
  $('run').disabled = false;
  const failed = outcomes.filter((o) => o.status === 'rejected');
  if (failed.length) setStatus(failed.length + ' of ' + chosen.length + ' failed: ' + failed[0].reason.message, true);
  else setStatus('done in ' + Math.round(performance.now() - started) + ' ms; move the threshold or click a class to filter, no new request.');
}

$('threshold').value = String(DISPLAY_THRESHOLD);
$('threshold').addEventListener('input', () => { showThreshold(); redraw(); });
$('model').addEventListener('change', chooseModel);
$('show-layer').addEventListener('click', showLayer);
$('form').addEventListener('submit', run);
$('image').addEventListener('change', () => $('image').files[0] && loadImage($('image').files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer.files[0];
  if (!file) return;
  $('drop-label').textContent = file.name; // the file input shows only what it chose itself
  loadImage(file);
});
fetch('/v1/models').then((r) => r.json()).then((body) => {
  state.models = body.models;
  $('model').replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
  chooseModel();
}).catch(() => setStatus('could not list the models (GET /v1/models)', true));
`;

export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rcnn-serve: three generations of R-CNN</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>rcnn-serve</h1>
  <p>R-CNN, Fast R-CNN and Faster R-CNN side by side on your image.</p>
  <nav><a href="/docs">API docs</a><a href="/openapi.yaml">OpenAPI</a><a href="/metrics">metrics</a></nav>
</header>
<div class="wrap">
<form id="form" class="card">
  <div id="controls">
    <label id="drop">Drop an image here, or choose one <span id="drop-label"><strong>(JPEG, PNG, WebP)</strong></span>
      <input id="image" type="file" accept="image/jpeg,image/png,image/webp">
    </label>
    <label class="field">Model <select id="model"></select></label>
    <fieldset><legend>Generations</legend>
      <label><input type="checkbox" id="gen-rcnn"> R-CNN</label>
      <label><input type="checkbox" id="gen-fast-rcnn"> Fast R-CNN</label>
      <label><input type="checkbox" id="gen-faster-rcnn"> Faster R-CNN</label>
    </fieldset>
    <button id="run" type="submit" disabled>Detect</button>
  </div>
</form>
<section id="model-info" class="card">
  <h2 id="model-name"></h2>
  <p id="model-description"></p>
  <p id="domain"></p>
</section>
<section id="filters" class="card">
  <label>Score threshold <input id="threshold" type="range" min="0" max="1" step="0.01"> <output id="thresholdValue"></output></label>
  <div class="chips" id="classes" aria-label="classes: click to show or hide"></div>
</section>
<p id="status" role="status">Choose an image. Then click a detection to see why.</p>
<main id="panels"></main>
<section id="explain" class="card" hidden>
  <h2>Why: <span id="explain-title"></span></h2>
  <div class="explain-view">
    <canvas id="explain-canvas"></canvas>
    <div>
      <p id="explain-summary"></p>
      <dl id="provenance"></dl>
      <p class="legend">Each square was greyed in turn and the box re-scored: <i style="background:rgba(230,40,40,.7)"></i>the score fell,
        <i style="background:rgba(40,40,230,.7)"></i>it rose. Solid: the detection; dashed: the region it was regressed from.</p>
    </div>
  </div>
</section>
<section id="features" class="card">
  <h2>What the backbone sees</h2>
  <div class="row">
    <label class="field">Layer <select id="layer"></select></label>
    <button id="show-layer" type="button">Show its feature maps</button>
  </div>
  <div class="feature-images">
    <figure><img id="layer-maps" alt="the layer's strongest activation maps"><figcaption id="layer-caption">Pick a layer to see its strongest activation maps for the image.</figcaption></figure>
    <figure><img id="first-filters" alt="the first layer's filters"><figcaption>The first layer's filters, each scaled to its own range.</figcaption></figure>
  </div>
</section>
</div>
<script>${SCRIPT}</script>
</body>
</html>
`;

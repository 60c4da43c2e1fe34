/**
 * GET /: a small page to pick an image, a model, a pipeline and a threshold,
 * and see the boxes drawn (it posts to /v1/render and /v1/detect). No build
 * step, no external assets.
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rcnn-serve</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #222; }
  form { display: flex; flex-wrap: wrap; gap: .75rem 1.25rem; align-items: end; margin-bottom: 1rem; }
  label { display: flex; flex-direction: column; gap: .25rem; font-size: .85rem; color: #555; }
  button { padding: .45rem 1.2rem; font-size: 1rem; cursor: pointer; }
  #result img { max-width: 100%; border: 1px solid #ddd; }
  #status { min-height: 1.4em; color: #555; }
  #status.error { color: #b00020; }
  table { border-collapse: collapse; margin-top: .75rem; font-size: .9rem; }
  td, th { border-bottom: 1px solid #eee; padding: .2rem .8rem .2rem 0; text-align: left; }
</style>
</head>
<body>
<h1>rcnn-serve</h1>
<p>Object detection with the R-CNN family. API: <a href="/docs">/docs</a>.</p>
<form id="form">
  <label>Image <input id="image" name="image" type="file" accept="image/jpeg,image/png,image/webp" required></label>
  <label>Model <select id="model"></select></label>
  <label>Pipeline <select id="pipeline"></select></label>
  <label>Score threshold <span><input id="threshold" type="range" min="0" max="1" step="0.05" value="0.3"> <output id="thresholdValue">0.30</output></span></label>
  <button id="run" type="submit">Detect</button>
</form>
<div id="status" role="status"></div>
<div id="result"></div>
<script>
const $ = (id) => document.getElementById(id);
const models = [];
$('threshold').addEventListener('input', () => ($('thresholdValue').value = Number($('threshold').value).toFixed(2)));
function fillPipelines() {
  const m = models.find((x) => x.name === $('model').value);
  $('pipeline').replaceChildren(...(m ? m.pipelines : []).map((p) => new Option(p, p)));
  $('pipeline').value = m && m.pipelines.includes('faster-rcnn') ? 'faster-rcnn' : $('pipeline').value;
}
fetch('/v1/models').then((r) => r.json()).then((body) => {
  models.push(...body.models);
  $('model').replaceChildren(...models.map((m) => new Option(m.name, m.name)));
  fillPipelines();
}).catch(() => ($('status').textContent = 'could not list models'));
$('model').addEventListener('change', fillPipelines);
$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = $('image').files[0];
  if (!file) return;
  const query = new URLSearchParams({ model: $('model').value, pipeline: $('pipeline').value, scoreThreshold: $('threshold').value });
  const body = () => { const f = new FormData(); f.append('image', file); return f; };
  $('status').className = '';
  $('status').textContent = 'detecting...';
  try {
    const [render, detect] = await Promise.all([
      fetch('/v1/render?' + query, { method: 'POST', body: body() }),
      fetch('/v1/detect?' + query, { method: 'POST', body: body() }),
    ]);
    if (!render.ok) throw new Error((await render.json()).message);
    const result = (await detect.json()).results[0];
    if (result.error) throw new Error(result.error.message);
    const img = new Image();
    img.alt = 'detections';
    img.src = URL.createObjectURL(await render.blob());
    const rows = result.detections.map((d) => '<tr><td>' + d.label.replace(/[<&]/g, '') + '</td><td>' + d.score.toFixed(3) + '</td><td>' + d.box.map((v) => v.toFixed(1)).join(', ') + '</td></tr>');
    const table = document.createElement('table');
    table.id = 'detections';
    table.innerHTML = '<tr><th>label</th><th>score</th><th>box (x1, y1, x2, y2)</th></tr>' + rows.join('');
    $('result').replaceChildren(img, table);
    $('status').textContent = result.detections.length + ' detection(s) in ' + Math.round(result.timings.total) + ' ms';
  } catch (err) {
    $('status').className = 'error';
    $('status').textContent = err.message;
  }
});
</script>
</body>
</html>
`;

import { readFileSync } from 'node:fs';
import { convertColour } from '../src/core/selective-search/colour-spaces.js';
import { felzenszwalb } from '../src/core/selective-search/felzenszwalb.js';
import { groupRegions, regionFeatures } from '../src/core/selective-search/grouping.js';
import { textureBins } from '../src/core/selective-search/texture.js';
import { decodeImage } from '../src/image/decode.js';
const img = await decodeImage(readFileSync('test/fixtures/images/coffee.png'));
for (let rep = 0; rep < 3; rep++) {
  let t = performance.now(); const lap = (n: string) => { const now = performance.now(); process.stdout.write(`${n} ${(now - t).toFixed(0)}  `); t = now; };
  const c = convertColour(img.data, img.width, img.height, 'HSV'); lap('colour');
  const tex = textureBins(c); lap('texture');
  const seg = felzenszwalb(c.data, img.width, img.height, 3, { scale: 100, sigma: 0.8, minSize: 100 }); lap('felz');
  const f = regionFeatures(seg, c, tex); lap('features');
  const h = groupRegions(f, { colour: true, texture: true, size: true, fill: true }); lap('group');
  console.log(seg.count, 'regions', h.boxes.length / 4);
}

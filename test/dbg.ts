import { readFileSync } from 'node:fs';
import { selectiveSearch } from '../src/core/selective-search/selective-search.js';
import { decodeImage } from '../src/image/decode.js';
const img = await decodeImage(readFileSync('test/fixtures/images/coffee.png'));
for (let i = 0; i < 3; i++) selectiveSearch(img, { mode: 'opencv-fast', seed: 0 });

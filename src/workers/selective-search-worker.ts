/**
 * Worker thread of the selective-search pool: runs the strategies it is sent
 * and posts their hierarchies back (the box arrays are transferred, not copied).
 */
import { parentPort } from 'node:worker_threads';
import { runStrategies, strategiesFor, type Mode } from '../core/selective-search/selective-search.js';

export interface StrategyTask {
  id: number;
  image: { data: Uint8Array; width: number; height: number };
  mode: Mode;
  indices: number[];
}

parentPort!.on('message', (task: StrategyTask) => {
  try {
    const hierarchies = runStrategies(task.image, strategiesFor(task.mode), task.mode, task.indices);
    parentPort!.postMessage({ id: task.id, boxes: hierarchies.map((h) => h.boxes) }, hierarchies.map((h) => h.boxes.buffer as ArrayBuffer));
  } catch (err) {
    parentPort!.postMessage({ id: task.id, error: (err as Error).message });
  }
});

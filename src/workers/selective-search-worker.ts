/**
 * Worker thread of the selective-search pool: runs the strategies it is sent
 * and posts their hierarchies back (the box arrays are transferred, not copied).
 */
import { runStrategies, strategiesFor, type Mode } from '../core/selective-search/selective-search.js';
import { answerJobs } from './helper-threads.js';

export interface StrategyTask {
  image: { data: Uint8Array; width: number; height: number };
  mode: Mode;
  indices: number[];
}

answerJobs<StrategyTask, Int32Array[]>((task) => {
  const hierarchies = runStrategies(task.image, strategiesFor(task.mode), task.mode, task.indices);
  return { answer: hierarchies.map((h) => h.boxes), transfer: hierarchies.map((h) => h.boxes.buffer as ArrayBuffer) };
});

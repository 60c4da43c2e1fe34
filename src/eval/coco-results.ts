/**
 * From detections to COCO results: image ids from a ground-truth file (by
 * file name, relative to the ground truth's folder) or from the input order,
 * category ids from the ground truth's category names (or the model's class
 * ids when there is none).
 */

import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { toXywh, type CocoDataset, type CocoResult } from '../dataset/coco.js';
import type { DetectionResult } from '../detector.js';

export async function readCocoDataset(path: string): Promise<CocoDataset> {
  return cocoDataset(JSON.parse(await readFile(path, 'utf8')), path);
}

/** A parsed COCO ground truth, checked for its three arrays. @throws RangeError naming `path` and what it needs. */
export function cocoDataset(doc: unknown, path: string): CocoDataset {
  const d = doc as CocoDataset | null;
  if (!d || !Array.isArray(d.images) || !Array.isArray(d.annotations) || !Array.isArray(d.categories)) {
    throw new RangeError(`${path} is not a COCO detection file: it needs "images", "annotations" and "categories" arrays`);
  }
  return d;
}

/** Looks up COCO image and category ids for detection results. */
export class CocoIds {
  private readonly images = new Map<string, number>();
  private readonly categories = new Map<string, number>();

  /** @param truth the ground truth and the path it was read from; omit to number images by input order. */
  constructor(truth?: { dataset: CocoDataset; path: string }) {
    if (!truth) return;
    const root = dirname(resolve(truth.path));
    for (const im of truth.dataset.images) this.images.set(resolve(root, im.file_name), im.id);
    for (const c of truth.dataset.categories) this.categories.set(c.name, c.id);
  }

  /**
   * @param index the image's position in the input, for numbering without ground truth.
   * @throws RangeError when the ground truth has no such image or a label is not one of its categories.
   */
  results(path: string, index: number, result: DetectionResult): CocoResult[] {
    let imageId = index + 1;
    if (this.images.size) {
      const id = this.images.get(resolve(path));
      if (id === undefined) throw new RangeError(`${path} is not one of the ground truth's images (file names are relative to its folder: ${relative(process.cwd(), resolve(path))})`);
      imageId = id;
    }
    return result.detections.map((d) => {
      let categoryId = d.classId;
      if (this.categories.size) {
        const id = this.categories.get(d.label);
        if (id === undefined) throw new RangeError(`label ${JSON.stringify(d.label)} is not a category of the ground truth (${[...this.categories.keys()].join(', ')})`);
        categoryId = id;
      }
      return { image_id: imageId, category_id: categoryId, bbox: toXywh(d.box).map((v) => Math.round(v * 100) / 100) as CocoResult['bbox'], score: Math.round(d.score * 1e5) / 1e5 };
    });
  }
}

/**
 * COCO detection format: the ground-truth file (`annotations.json`) and the
 * results file, as pycocotools reads them. Boxes are [x, y, width, height].
 */

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  /** Object area in pixels (COCO: the segment's; its size class small / medium / large comes from it). */
  area: number;
  iscrowd: 0 | 1;
}

export interface CocoCategory {
  id: number;
  name: string;
}

export interface CocoDataset {
  info?: Record<string, unknown>;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/** xyxy -> COCO's xywh. */
export function toXywh(box: readonly number[]): [number, number, number, number] {
  return [box[0]!, box[1]!, box[2]! - box[0]!, box[3]! - box[1]!];
}

#!/usr/bin/python3
"""OpenCV side of `npm run bench:ss`: writes a seeded set of cluttered
synthetic scenes with ground-truth boxes, and runs OpenCV ximgproc's
selective search on them with one thread, recording boxes and times.

    test/bench/selective_search_reference.py --out DIR --count N --seed S --modes single,fast

Scenes (500 x 375, the R-CNN resize): 4-9 objects each (rectangles,
ellipses, triangles, crosses; 20-200 px; random colours), partly occluding
one another, on a noisy gradient background with 10-30 small distractor
blobs that are not annotated, then blurred. Ground truth: each object's
visible extent (its mask minus the objects drawn over it); objects hidden
entirely are dropped.
"""
import argparse
import json
import os
import random
import statistics
import time

import cv2
import numpy as np

SHAPES = ("rectangle", "ellipse", "triangle", "cross")


def shape_mask(kind, h, w, box):
    x1, y1, x2, y2 = [int(round(v)) for v in box]
    m = np.zeros((h, w), np.uint8)
    if kind == "rectangle":
        cv2.rectangle(m, (x1, y1), (x2, y2), 1, -1)
    elif kind == "ellipse":
        cv2.ellipse(m, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), 1, -1)
    elif kind == "triangle":
        cv2.fillPoly(m, [np.array([((x1 + x2) // 2, y1), (x2, y2), (x1, y2)], np.int32)], 1)
    else:
        tw, th = (x2 - x1) // 3, (y2 - y1) // 3
        cv2.rectangle(m, (x1 + tw, y1), (x2 - tw, y2), 1, -1)
        cv2.rectangle(m, (x1, y1 + th), (x2, y2 - th), 1, -1)
    return m.astype(bool)


def scene(rng, w=500, h=375):
    base = np.array([rng.uniform(30, 220) for _ in range(3)])
    grad = np.linspace(0, 1, w)[None, :, None] * np.array([rng.uniform(-70, 70) for _ in range(3)])
    img = np.clip(base + grad + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    for _ in range(rng.randint(10, 30)):  # distractors: small blobs, not annotated
        c = tuple(int(v) for v in np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, 3))
        cv2.circle(img, (rng.randrange(w), rng.randrange(h)), rng.randint(2, 7), c, -1)
    masks, labels = [], []
    for _ in range(rng.randint(4, 9)):
        side = rng.uniform(20, 200)
        bw, bh = side * rng.uniform(0.6, 1.5), side * rng.uniform(0.6, 1.5)
        x1, y1 = rng.uniform(0, max(1, w - bw)), rng.uniform(0, max(1, h - bh))
        kind = rng.choice(SHAPES)
        m = shape_mask(kind, h, w, (x1, y1, min(w - 1, x1 + bw), min(h - 1, y1 + bh)))
        colour = tuple(int(v) for v in (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        img[m] = colour
        masks = [old & ~m for old in masks]
        masks.append(m)
        labels.append(kind)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            continue
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
    return img, boxes


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", default="single,fast")
    p.add_argument("--rounds", type=int, default=1, help="time each image this many times and keep the median")
    p.add_argument("--photos", default="", help="comma-separated photos to time instead of scenes (resized to 500 x 375; no ground truth)")
    args = p.parse_args()
    cv2.setNumThreads(1)
    rng = random.Random(args.seed)
    images = []
    if args.photos:
        for i, path in enumerate(args.photos.split(",")):
            img = cv2.resize(cv2.imread(path), (500, 375), interpolation=cv2.INTER_AREA)
            name = f"photo-{i:03d}.png"
            cv2.imwrite(os.path.join(args.out, name), img)
            images.append({"file": name, "boxes": [], "source": os.path.basename(path)})
    for i in range(0 if args.photos else args.count):
        img, boxes = scene(rng)
        name = f"scene-{i:03d}.png"
        cv2.imwrite(os.path.join(args.out, name), img[:, :, ::-1])  # RGB array -> BGR for imwrite
        images.append({"file": name, "boxes": boxes})
    results = {}
    for mode in args.modes.split(","):
        per_image = []
        for im in images:
            bgr = cv2.imread(os.path.join(args.out, im["file"]))
            times = []
            for _ in range(args.rounds):
                ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
                ss.setBaseImage(bgr)
                {"single": ss.switchToSingleStrategy, "fast": ss.switchToSelectiveSearchFast, "quality": ss.switchToSelectiveSearchQuality}[mode]()
                t = time.perf_counter()
                rects = ss.process()
                times.append((time.perf_counter() - t) * 1000)
            per_image.append({"ms": statistics.median(times), "boxes": [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in rects]})
        results[mode] = per_image
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"opencv": cv2.__version__, "images": images, "results": results}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""torchvision side of `npm run bench`: writes the shared inputs and times the
reference on them. Called by test/bench/faster-rcnn.ts; prints one JSON object.

    test/bench/reference.py --work DIR --threads N --repeats R
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from torchvision.ops import nms, roi_align

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models", "recipes", "torchvision"))
from export_torchvision import build_model  # noqa: E402


def rpn_like_boxes(g, n, width=1067, height=800):
    """Boxes as an RPN proposes them before NMS: clusters of heavily
    overlapping boxes around ~60 objects plus background boxes, clipped."""
    centres = torch.rand(60, 2, generator=g) * torch.tensor([width, height])
    sizes = 32 * 2 ** (torch.rand(60, 1, generator=g) * 4)
    pick = torch.randint(0, 60, (n,), generator=g)
    c = centres[pick] + torch.randn(n, 2, generator=g) * sizes[pick] * 0.15
    wh = sizes[pick] * torch.exp(torch.randn(n, 2, generator=g) * 0.25)
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
    background = int(n * 0.3)
    xy = torch.rand(background, 2, generator=g) * torch.tensor([width, height])
    boxes[:background] = torch.cat([xy, xy + 16 + torch.rand(background, 2, generator=g) * 300], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    scores = torch.rand(n, generator=g)
    return boxes.contiguous(), scores


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median": float(np.median(times)), "min": float(np.min(times))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image", required=True)
    p.add_argument("--skip-e2e", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    for n in (6000, 12000):
        boxes, scores = rpn_like_boxes(g, n)
        boxes.numpy().astype("<f4").tofile(os.path.join(args.work, f"nms{n}_boxes.f32"))
        scores.numpy().astype("<f4").tofile(os.path.join(args.work, f"nms{n}_scores.f32"))
        nms(boxes, scores, 0.7)
        out[f"nms{n}"] = best_of(lambda: nms(boxes, scores, 0.7), args.repeats * 4)
        out[f"nms{n}"]["kept"] = int(len(nms(boxes, scores, 0.7)))

    # RoIAlign as the box head runs it at 800 px: a stride-4 level of 200 x 267.
    feat = torch.randn(1, 256, 200, 267, generator=g)
    boxes, _ = rpn_like_boxes(g, 1000, 1067, 800)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 4)
    feat.permute(0, 2, 3, 1).contiguous().numpy().astype("<f4").tofile(os.path.join(args.work, "roi_feature_nhwc.f32"))
    boxes.numpy().astype("<f4").tofile(os.path.join(args.work, "roi_boxes.f32"))
    rois = torch.cat([torch.zeros(1000, 1), boxes], 1)
    roi_align(feat, rois, 7, 0.25, 2, False)
    out["roiAlign"] = best_of(lambda: roi_align(feat, rois, 7, 0.25, 2, False), args.repeats)

    if not args.skip_e2e:
        model = build_model("fasterrcnn_resnet50_fpn", "none", 91, 0, 1.0)
        rgb = np.asarray(Image.open(args.image).convert("RGB"))
        image = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255
        with torch.no_grad():
            model([image])
            det = {}

            def run():
                det["n"] = len(model([image])[0]["boxes"])

            out["e2e"] = best_of(run, args.repeats)
            out["e2e"]["detections"] = det["n"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Briefly train the tiny_fpn Faster R-CNN on seeded synthetic shapes, so the
fixture package has real, well-spread scores (an untrained head scores every
box about the same, and parity at a top-k cut then hinges on 1e-6 ties).

    OMP_NUM_THREADS=2 /usr/bin/python3 models/recipes/torchvision/train_fixture.py --steps 400 --seed 0 --out /tmp/fixture.pth
    /usr/bin/python3 models/recipes/torchvision/export_torchvision.py --arch tiny_fpn --weights /tmp/fixture.pth \\
        --num-classes 5 --classes rectangle,ellipse,triangle,cross --seed 0 --out test/fixtures/packages/fixture-tiny-fpn

About 4 minutes on 2 cores. This is a test fixture, not a useful detector:
the project's trained default package is a separate recipe.
"""
import argparse
import os
import random
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import build_model  # noqa: E402

CLASSES = ["rectangle", "ellipse", "triangle", "cross"]


def draw_shape(draw, kind, box, colour):
    x1, y1, x2, y2 = box
    if kind == "rectangle":
        draw.rectangle(box, fill=colour)
    elif kind == "ellipse":
        draw.ellipse(box, fill=colour)
    elif kind == "triangle":
        draw.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=colour)
    else:
        tw, th = (x2 - x1) / 3, (y2 - y1) / 3
        draw.rectangle((x1 + tw, y1, x2 - tw, y2), fill=colour)
        draw.rectangle((x1, y1 + th, x2, y2 - th), fill=colour)


def synthetic_image(rng, size=(320, 256)):
    """A noisy gradient background with 1-5 shapes; returns (RGB uint8, boxes xyxy, labels 1..4)."""
    w, h = size
    base = np.array([rng.uniform(40, 200) for _ in range(3)])
    grad = np.linspace(0, 1, w)[None, :, None] * np.array([rng.uniform(-60, 60) for _ in range(3)])
    arr = np.clip(base + grad + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    draw = ImageDraw.Draw(im)
    boxes, labels = [], []
    for _ in range(rng.randint(1, 5)):
        side = rng.uniform(24, 140)
        bw, bh = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
        x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        k = rng.randrange(len(CLASSES))
        colour = tuple(int(c) for c in (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw_shape(draw, CLASSES[k], (x1, y1, x1 + bw, y1 + bh), colour)
        boxes.append([x1, y1, x1 + bw, y1 + bh])
        labels.append(k + 1)
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0)))
    return np.asarray(im), boxes, labels


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="state_dict .pth to write")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    rng = random.Random(args.seed)
    model = build_model("tiny_fpn", "none", len(CLASSES) + 1, args.seed).train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=args.steps, pct_start=0.1)
    for step in range(args.steps):
        images, targets = [], []
        for _ in range(args.batch):
            arr, boxes, labels = synthetic_image(rng)
            images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255)
            targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels, dtype=torch.int64)})
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} " + " ".join(f"{k}={v.item():.3f}" for k, v in losses.items()), flush=True)
    torch.save(model.state_dict(), args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

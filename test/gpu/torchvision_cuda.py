#!/usr/bin/python3
"""torchvision's fasterrcnn_resnet50_fpn on CUDA, on the weights the device
script exports (seed 0, built by the same recipe): the reference side of
`npm run test:gpu` (test/gpu/device-check.ts).

Prints one JSON line: batch-1 latency (median of --repeats, after warm-up,
each run synchronised) and the throughput of one batched call of C images
for each C in --concurrency, in fp32 (PyTorch's defaults: cuDNN convolutions
may use TF32, unless NVIDIA_TF32_OVERRIDE=0, as device-run.sh sets) and in
fp16 (torch.autocast). Without CUDA (the dry run) it
runs the fp32 part on the CPU, two repeats and a batch of two.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "models", "recipes", "torchvision"))
from export_torchvision import build_model  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--concurrency", default="8,32")
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    repeats = args.repeats if cuda else min(args.repeats, 2)
    batches = [int(c) for c in args.concurrency.split(",")] if cuda else [2]

    model = build_model("fasterrcnn_resnet50_fpn", "none", 91, 0, 1.0).to(device)
    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    image = (torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255).to(device)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def run(images, precision):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=precision == "fp16"):
            out = model(images)
        sync()
        return out

    out = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cudnnTf32": torch.backends.cudnn.allow_tf32 if cuda else None,
        "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE"),
    }
    for precision in ["fp32", "fp16"] if cuda else ["fp32"]:
        for _ in range(3):
            run([image], precision)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run([image], precision)
            times.append((time.perf_counter() - t) * 1000)
        result = {"batch1Ms": float(np.median(times)), "detections": len(run([image], precision)[0]["boxes"])}
        for c in batches:
            run([image] * c, precision)
            t = time.perf_counter()
            run([image] * c, precision)
            result[f"batch {c} images/s"] = c / (time.perf_counter() - t)
        out[precision] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()

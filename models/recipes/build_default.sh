#!/usr/bin/env bash
# Build the default package, models/shapes-vgg, from nothing: the dataset,
# the three training stages and the export. From the repository root, after
# `npm install`, with Debian's python3-torch and python3-torchvision:
#
#     bash models/recipes/build_default.sh [SEED]
#
# About 60 minutes on 2 cores (dataset 10, pretrain 7, faster-rcnn 15,
# proposals 10, fast-rcnn 7, rcnn 7; each stage prints its time). Everything but the package goes under data/.
set -euo pipefail
seed="${1:-0}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
cli="node bin/rcnn-serve.js"
recipes=models/recipes
weights=data/weights-seed$seed

[ -f data/train/annotations.json ] || $cli dataset --split train --out data/train
[ -f data/test/annotations.json ] || $cli dataset --split test --out data/test
mkdir -p "$weights"
/usr/bin/python3 $recipes/train_shapes.py pretrain --data data/train --seed "$seed" --out "$weights/pretrain.pth"
/usr/bin/python3 $recipes/train_shapes.py faster-rcnn --data data/train --backbone "$weights/pretrain.pth" --seed "$seed" --out "$weights/faster.pth"
[ -f data/train/proposals.jsonl ] || $cli proposals data/train/images/*.jpg --mode single --max 2000 --json > data/train/proposals.jsonl
/usr/bin/python3 $recipes/train_shapes.py fast-rcnn --data data/train --proposals data/train/proposals.jsonl \
  --backbone "$weights/pretrain.pth" --seed "$seed" --out "$weights/fast.pth"
/usr/bin/python3 $recipes/train_shapes.py rcnn --data data/train --proposals data/train/proposals.jsonl \
  --backbone "$weights/pretrain.pth" --seed "$seed" --out "$weights/rcnn.pth"
/usr/bin/python3 $recipes/export_shapes.py --faster "$weights/faster.pth" --fast "$weights/fast.pth" --rcnn "$weights/rcnn.pth" \
  --classes data/train/annotations.json --out "${OUT:-models/shapes-vgg}"

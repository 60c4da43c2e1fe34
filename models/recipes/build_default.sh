#!/usr/bin/env bash
# Build the default package, models/shapes-vgg, from nothing: the dataset,
# the three training stages and the export. From the repository root, after
# `npm install`, with Debian's python3-torch and python3-torchvision:
#
#     bash models/recipes/build_default.sh [SEED]
#
# About 90 minutes on 2 cores (dataset 10, pretrain 7, faster-rcnn 27 + 16,
# proposals 10, fast-rcnn 10, rcnn 8; each stage prints its time). Everything but the package goes under data/.
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
# Faster R-CNN fine-tunes the backbone (BatchNorm frozen) under the RPN and box head, in two rounds:
# at the pretraining's scales, then at larger ones (small objects), restarting the learning rate.
/usr/bin/python3 $recipes/train_shapes.py faster-rcnn --data data/train --backbone "$weights/pretrain.pth" --seed "$seed" \
  --out "$weights/faster-round1.pth"
/usr/bin/python3 $recipes/train_shapes.py faster-rcnn --data data/train --init "$weights/faster-round1.pth" --seed "$((seed + 1))" \
  --sizes 352,384,416,448,480,512,544 --steps 800 --lr 0.005 --out "$weights/faster.pth"
[ -f data/train/proposals.jsonl ] || $cli proposals data/train/images/*.jpg --mode single --max 2000 --json > data/train/proposals.jsonl
# The Fast R-CNN and R-CNN heads learn on the backbone as the faster-rcnn stage fine-tuned it (the
# Faster R-CNN paper's shared features), frozen, so that one backbone serves all three pipelines.
/usr/bin/python3 $recipes/train_shapes.py fast-rcnn --data data/train --proposals data/train/proposals.jsonl \
  --backbone "$weights/faster.pth" --sizes 352,384,416,448,480,512,544 --seed "$seed" --out "$weights/fast.pth"
/usr/bin/python3 $recipes/train_shapes.py rcnn --data data/train --proposals data/train/proposals.jsonl \
  --backbone "$weights/faster.pth" --seed "$seed" --out "$weights/rcnn.pth"
/usr/bin/python3 $recipes/export_shapes.py --faster "$weights/faster.pth" --fast "$weights/fast.pth" --rcnn "$weights/rcnn.pth" \
  --classes data/train/annotations.json --out "${OUT:-models/shapes-vgg}"

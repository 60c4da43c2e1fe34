#!/usr/bin/env bash
# Build the default package, models/shapes-vgg, from nothing: the dataset,
# the three training stages and the export. From the repository root, after
# `npm install`, with Debian's python3-torch and python3-torchvision:
#
#     bash models/recipes/shapes-vgg/build_default.sh [SEED]
#
# About 8 hours on 2 cores, minutes: datasets 9, pretrain 7, faster-rcnn rounds 27 + 16 + 30 x 11,
# selective search 24, the two heads side by side 50 (the first, and the last two, as
# rerun_heads.sh measured them on 2026-12-01 with benchmarks running alongside). Each training
# stage logs its steps' times. DEVICE=cuda runs the training stages on a GPU, with PYTHON naming a
# Python whose torch has CUDA: the same steps (a round took 3 minutes on an H200); CUDA rounds
# differently, so the weights are not bitwise a CPU run's.
# Everything but the package goes under data/.
set -euo pipefail
seed="${1:-0}"
device="${DEVICE:-cpu}"
python="${PYTHON:-/usr/bin/python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
cli="node bin/rcnn-serve.js"
recipes=models/recipes/shapes-vgg
weights=data/weights-seed$seed
source $recipes/steps.sh

write_splits
mkdir -p "$weights"
$python $recipes/train_shapes.py pretrain --device "$device" --data data/train --seed "$seed" --out "$weights/pretrain.pth"
# Faster R-CNN fine-tunes the backbone (BatchNorm frozen) under the RPN and box head: round 1 at the
# pretraining's scales, then config.json's rounds, which restart the learning rate at larger sizes
# (small objects), each from the last: rounds 2 to 8 on the train split, 9 to 12 on train and
# train-extra (twice the images: by round 8 the model over-fits its 1600), 13 on all three.
$python $recipes/train_shapes.py faster-rcnn --device "$device" --data data/train --backbone "$weights/pretrain.pth" --seed "$seed" \
  --out "$weights/faster-round1.pth"
init="$weights/faster-round1.pth"
for round in $(config rounds.schedule); do
  IFS=: read -r n steps splits <<< "$round"
  $python $recipes/train_shapes.py faster-rcnn --device "$device" --data "${train[@]:0:splits}" --init "$init" --seed "$((seed + n - 1))" \
    --sizes "$(config rounds.sizes)" --steps "$steps" --lr "$(config rounds.lr)" --out "$weights/faster-round$n.pth"
  init="$weights/faster-round$n.pth"
done
cp "$init" "$weights/faster.pth"
selective_search_boxes
# The Fast R-CNN and R-CNN heads learn on the backbone as the faster-rcnn stage fine-tuned it (the
# Faster R-CNN paper's shared features), frozen, so that one backbone serves all three pipelines.
train_heads "$weights/faster.pth" "$weights"
$python $recipes/export_shapes.py --faster "$weights/faster.pth" --fast "$weights/fast.pth" --rcnn "$weights/rcnn.pth" \
  --classes data/train/annotations.json --out "${OUT:-models/shapes-vgg}"

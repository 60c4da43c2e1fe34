#!/usr/bin/python3
"""Train the default package's detectors on the synthetic shapes dataset, one
stage per command (see shapes_common.py for the networks). From the
repository root, with the dataset written by `npm run dataset`:

    npm run dataset -- --split train --out data/train
    npm run dataset -- --split train-extra --out data/train-extra
    npm run dataset -- --split train-extra2 --out data/train-extra2
    W=data/weights; export OMP_NUM_THREADS=2
    /usr/bin/python3 models/recipes/shapes-vgg/train_shapes.py pretrain --data data/train --out $W/pretrain.pth
    /usr/bin/python3 models/recipes/shapes-vgg/train_shapes.py faster-rcnn --data data/train --backbone $W/pretrain.pth --out $W/faster-round1.pth
    /usr/bin/python3 models/recipes/shapes-vgg/train_shapes.py faster-rcnn --data data/train --init $W/faster-round1.pth --seed 1 \\
        --sizes 352,384,416,448,480,512,544 --steps 800 --lr 0.005 --out $W/faster-round2.pth
    (rounds 3 to 13 the same, each --init the last, --seed 2 to 12, --steps 1500; rounds 9 to 12 with
    --data data/train data/train-extra, round 13 with train-extra2 too; the last is $W/faster.pth)
    T="data/train data/train-extra data/train-extra2"
    P="data/train/proposals.jsonl data/train-extra/proposals.jsonl data/train-extra2/proposals.jsonl"
    PF="data/train/proposals-fast.jsonl data/train-extra/proposals-fast.jsonl data/train-extra2/proposals-fast.jsonl"
    for d in $T; do
        node bin/rcnn-serve.js proposals $d/images/*.jpg --mode single --max 2000 --json > $d/proposals.jsonl
        node bin/rcnn-serve.js proposals $d/images/*.jpg --mode fast --max 2000 --json > $d/proposals-fast.jsonl; done
    /usr/bin/python3 models/recipes/shapes-vgg/train_shapes.py fast-rcnn --data $T --backbone $W/faster.pth --init $W/faster.pth \\
        --sizes 352,384,416,448,480,512,544 --proposals $P --out $W/fast.pth
    /usr/bin/python3 models/recipes/shapes-vgg/train_shapes.py rcnn --data $T --backbone $W/faster.pth --proposals $PF --out $W/rcnn.pth

(models/recipes/shapes-vgg/build_default.sh runs them all and exports the package.)

pretrain trains the backbone the three heads share: shape classification of
warped regions of the training split (the objects, jittered, and random
background boxes), global average pooling and a linear layer, the stand-in
for the ImageNet pretraining of the papers' networks (nothing can be
downloaded here).

faster-rcnn: the RPN and the RoIAlign head (torchvision's FasterRCNN losses)
over the pretrained backbone, whose convolutions it fine-tunes (BatchNorm
keeps its pretrained statistics: 4 images per batch), the short side drawn
per batch from --sizes; further rounds (--init) restart the learning rate at
larger sizes. fast-rcnn and rcnn train their heads on that fine-tuned
backbone, frozen, so that one backbone serves all three pipelines (the
Faster R-CNN paper's shared features): fast-rcnn on RoI max-pooled
selective-search regions (the Fast R-CNN paper's sampling: 64 RoIs per
image, 25% with IoU >= 0.5), starting from the faster-rcnn stage's box head
(--init: the same layers; on round 12's backbone, 2500 steps from it scored
AP50 81.2 on 100 validation images against 79.4 for 5000 steps from random
weights; on round 13's, 5000 steps 82.3 against 81.3 for 2500); rcnn with
fc6, fc7, classifier and regressor on warped regions (the R-CNN paper's: 25%
foreground at IoU >= 0.5).

Measured before this design: a Faster R-CNN trained end to end from scratch
(1200 steps, lr 0.02) found the objects but could not tell the shapes apart
(AP50 0.097 on 100 validation images); with the backbone frozen after
pretraining (--freeze-backbone), 0.217; fine-tuned, 0.458 (one round).

Deterministic for a seed on one machine (torch's deterministic algorithms,
seeded sampling, one thread count), on a GPU too (--device cuda: two runs of
round 8 and its heads on one H200 gave identical weights).
"""
import argparse
import os
import sys
import time

import torch
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import box_iou, roi_pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import config  # noqa: E402
from shapes_common import (BOX_WEIGHTS, CONTEXT, POOL, PRETRAIN_CONTEXT, PRETRAIN_WARP, STRIDE, WARP, CocoShapes,  # noqa: E402
                           RcnnHead, RoiHead, SmallVGG, faster_rcnn, normalise, seed_everything, warp_regions)


def flip(pixels, target):
    """Horizontal flip of an image and its boxes."""
    w = pixels.shape[1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    return pixels[:, ::-1].copy(), {**target, "boxes": boxes}


class Schedule:
    """Linear warm-up then cosine decay, stepped once per iteration."""

    def __init__(self, opt, lr, steps, warmup):
        self.opt, self.lr, self.steps, self.warmup = opt, lr, steps, warmup

    def set(self, step):
        import math
        f = (step + 1) / self.warmup if step < self.warmup else 0.5 * (1 + math.cos(math.pi * (step - self.warmup) / max(1, self.steps - self.warmup)))
        for g in self.opt.param_groups:
            g["lr"] = self.lr * max(f, 0.01)


def batches(n, batch, steps, seed):
    """`steps` batches of image indices: seeded epochs of shuffled indices."""
    g = torch.Generator().manual_seed(seed)
    order = []
    for _ in range(steps):
        idx = []
        while len(idx) < batch:
            if not order:
                order = torch.randperm(n, generator=g).tolist()
            idx.append(order.pop())
        yield idx


def to_device(target, device):
    return {k: v.to(device) for k, v in target.items()}


def image_tensor(pixels, device):
    """HWC uint8 RGB -> CHW float in [0, 1] on the device, as torchvision's detectors take images."""
    return torch.from_numpy(pixels.copy()).to(device).permute(2, 0, 1).float() / 255


def load_batch(data, idx, rng, device):
    images, targets = [], []
    for i in idx:
        pixels, target = data.pixels(i), data.targets[i]
        if rng.random() < 0.5:
            pixels, target = flip(pixels, target)
        images.append(image_tensor(pixels, device))
        targets.append(to_device(target, device))
    return images, targets


def flip_proposals(boxes, width):
    out = boxes.clone()
    out[:, [0, 2]] = width - boxes[:, [2, 0]]
    return out


def train(params, steps, lr, log_every, step_fn, log_only=()):
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = Schedule(opt, lr, steps, warmup=min(200, steps // 10))
    started = time.time()
    for step in range(steps):
        sched.set(step)
        losses = step_fn(step)
        loss = sum(v for k, v in losses.items() if k not in log_only)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step:5d}/{steps} {time.time() - started:6.0f}s loss {loss.item():.3f} "
                  + " ".join(f"{k}={v.item():.3f}" for k, v in losses.items()), flush=True)


class CropClassifier(nn.Module):
    """The backbone with global average pooling and a linear layer: the stand-in for ImageNet pretraining."""

    def __init__(self, num_classes):
        super().__init__()
        self.trunk = SmallVGG()
        self.fc = nn.Linear(SmallVGG.out_channels, num_classes)

    def forward(self, x):
        return self.fc(self.trunk(x).mean(dim=(2, 3)))


def background_boxes(gt, width, height, count, g):
    """Random boxes (16 to 250 px) overlapping no object by IoU 0.3 or more: clutter and background."""
    out = []
    for _ in range(count * 4):
        side = float(torch.exp(torch.empty(1).uniform_(2.77, 5.52, generator=g)))
        w = side * float(torch.empty(1).uniform_(0.7, 1.4, generator=g))
        h = side * float(torch.empty(1).uniform_(0.7, 1.4, generator=g))
        x, y = float(torch.rand(1, generator=g)) * max(1.0, width - w), float(torch.rand(1, generator=g)) * max(1.0, height - h)
        box = torch.tensor([[x, y, x + w, y + h]])
        if len(gt) == 0 or box_iou(box, gt).max() < 0.3:
            out.append(box)
        if len(out) == count:
            break
    return torch.cat(out) if out else torch.zeros(0, 4)


def jitter(boxes, g, amount=0.1):
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + wh * (torch.rand(boxes.shape, generator=g) * 2 - 1) * amount


def stage_pretrain(args, data):
    """Shape classification of warped regions (objects, jittered, and background boxes): it teaches the
    backbone shapes before detection, as ImageNet pretraining does for the papers' networks."""
    g = torch.Generator().manual_seed(args.seed)
    model = CropClassifier(len(data.categories) + 1).to(args.device).train()
    it = batches(len(data), args.batch, args.steps, args.seed)

    def step(_):
        crops, labels = [], []
        for i in next(it):
            pixels, target = data.pixels(i), data.targets[i]
            gt = target["boxes"]
            bg = background_boxes(gt, pixels.shape[1], pixels.shape[0], max(2, len(gt)), g)
            boxes = torch.cat([jitter(gt, g), bg])
            crops.append(warp_regions(normalise(pixels).to(args.device), boxes.to(args.device), PRETRAIN_WARP, PRETRAIN_CONTEXT))
            labels.append(torch.cat([target["labels"], torch.zeros(len(bg), dtype=torch.int64)]))
        x = torch.cat(crops)
        flip_mask = (torch.rand(len(x), generator=g) < 0.5).to(args.device)
        x[flip_mask] = x[flip_mask].flip(-1)
        y = torch.cat(labels).to(args.device)
        logits = model(x)
        return {"loss_classifier": nn.functional.cross_entropy(logits, y), "error": (logits.argmax(1) != y).float().mean().detach()}

    train([p for p in model.parameters() if p.requires_grad], args.steps, args.lr, 50, step, log_only=("error",))
    return model.trunk.state_dict()


def sub_state(state, prefix):
    """The entries of a state_dict under prefix (a submodule's), named as the submodule names them."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def trunk_state(path):
    """The backbone's weights from a pretrain .pth (the trunk alone) or a faster-rcnn .pth (the whole
    detector, whose stage fine-tuned the trunk)."""
    state = torch.load(path, map_location="cpu")
    return sub_state(state, "backbone.trunk.") or state


def freeze(trunk):
    """The shared backbone is not trained by the detection stages: BatchNorm in inference mode, no gradients."""
    trunk.eval()
    for p in trunk.parameters():
        p.requires_grad_(False)


def freeze_batchnorm(trunk):
    """Fine-tuning with a few images per batch: the convolutions learn, BatchNorm keeps its pretrained
    statistics and affine terms (detectron2's FrozenBatchNorm2d)."""
    for m in trunk.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def stage_faster(args, data):
    import random
    rng = random.Random(args.seed)
    model = faster_rcnn(len(data.categories) + 1, min_size=args.sizes)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    else:
        model.backbone.trunk.load_state_dict(trunk_state(args.backbone))
    model.to(args.device).train()
    (freeze if args.freeze_backbone else freeze_batchnorm)(model.backbone.trunk)
    it = batches(len(data), args.batch, args.steps, args.seed)

    def step(_):
        images, targets = load_batch(data, next(it), rng, args.device)
        return model(images, targets)

    train([p for p in model.parameters() if p.requires_grad], args.steps, args.lr, 50, step)
    return model.state_dict()


def frozen_detector(args, num_classes):
    """The shared backbone (and torchvision's transform, at the training sizes) for the fast-rcnn stage."""
    model = faster_rcnn(num_classes, min_size=args.sizes)
    model.backbone.trunk.load_state_dict(trunk_state(args.backbone))
    freeze(model)
    model.transform.train()  # random short side per batch
    return model


class RoiMaxPool(nn.Module):
    """Fast R-CNN's RoI max pooling on the stride-8 map, with the pooler signature torchvision's RoIHeads calls."""

    def forward(self, features, proposals, image_shapes):
        return roi_pool(features["0"], proposals, (POOL, POOL), 1.0 / STRIDE)


def stage_fast(args, data):
    import random
    rng = random.Random(args.seed)
    proposals = data.load_proposals(args.proposals)
    detector = frozen_detector(args, len(data.categories) + 1).to(args.device)
    head = RoiHead(len(data.categories) + 1)
    if args.init:
        head.load_state_dict(sub_state(torch.load(args.init, map_location="cpu"), "roi_heads."))
    head = head.to(args.device).train()
    roi_heads = RoIHeads(RoiMaxPool(), head.box_head, head.box_predictor, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
                         batch_size_per_image=64, positive_fraction=0.25, bbox_reg_weights=BOX_WEIGHTS,
                         score_thresh=0.05, nms_thresh=0.5, detections_per_img=100).train()
    it = batches(len(data), args.batch, args.steps, args.seed)

    def step(_):
        idx = next(it)
        images, targets, props = [], [], []
        for i in idx:
            pixels, target, boxes = data.pixels(i), data.targets[i], proposals[i][: args.max_proposals]
            if rng.random() < 0.5:
                boxes = flip_proposals(boxes, pixels.shape[1])
                pixels, target = flip(pixels, target)
            images.append(image_tensor(pixels, args.device))
            targets.append(to_device(target, args.device))
            props.append(boxes.to(args.device))
        with torch.no_grad():
            originals = [im.shape[-2:] for im in images]
            batch, targets = detector.transform(images, targets)
            features = detector.backbone(batch.tensors)
        # Proposals from original pixels to the resized input, per axis as torchvision's resize_boxes.
        scaled = []
        for boxes, (h0, w0), (h, w) in zip(props, originals, batch.image_sizes):
            scaled.append(boxes * torch.tensor([w / w0, h / h0, w / w0, h / h0], device=args.device))
        _, losses = roi_heads(features, scaled, batch.image_sizes, targets)
        return losses

    train([p for p in head.parameters() if p.requires_grad], args.steps, args.lr, 50, step)
    return head.state_dict()


def stage_rcnn(args, data):
    import random
    rng = random.Random(args.seed)
    proposals = data.load_proposals(args.proposals)
    trunk = SmallVGG()
    trunk.load_state_dict(trunk_state(args.backbone))
    freeze(trunk.to(args.device))
    head = RcnnHead(len(data.categories) + 1).to(args.device).train()
    matcher = det_utils.Matcher(0.5, 0.5, allow_low_quality_matches=False)
    sampler = det_utils.BalancedPositiveNegativeSampler(args.rois_per_image, 0.25)
    coder = det_utils.BoxCoder(BOX_WEIGHTS)
    it = batches(len(data), args.batch, args.steps, args.seed)

    def step(_):
        crops, labels, deltas = [], [], []
        for i in next(it):
            pixels, target, boxes = data.pixels(i), data.targets[i], proposals[i][: args.max_proposals]
            if rng.random() < 0.5:
                boxes = flip_proposals(boxes, pixels.shape[1])
                pixels, target = flip(pixels, target)
            target = to_device(target, args.device)
            gt = target["boxes"]
            boxes = torch.cat([boxes.to(args.device), gt])
            if len(gt):
                matched = matcher(box_iou(gt, boxes))
                lab = target["labels"][matched.clamp(min=0)]
                lab[matched < 0] = 0
                reg = coder.encode_single(gt[matched.clamp(min=0)], boxes)
            else:
                lab = torch.zeros(len(boxes), dtype=torch.int64, device=args.device)
                reg = torch.zeros(len(boxes), 4, device=args.device)
            pos, neg = sampler([lab])
            keep = torch.where(pos[0] | neg[0])[0]
            with torch.no_grad():
                crops.append(trunk(warp_regions(normalise(pixels).to(args.device), boxes[keep], WARP, CONTEXT)).permute(0, 2, 3, 1))
            labels.append(lab[keep])
            deltas.append(reg[keep])
        logits, box_regression = head(torch.cat(crops))
        cls_loss, box_loss = fastrcnn_loss(logits, box_regression, [torch.cat(labels)], [torch.cat(deltas)])
        return {"loss_classifier": cls_loss, "loss_box_reg": box_loss}

    train([p for p in head.parameters() if p.requires_grad], args.steps, args.lr, 50, step)
    return head.state_dict()


STAGES = {"pretrain": stage_pretrain, "faster-rcnn": stage_faster, "fast-rcnn": stage_fast, "rcnn": stage_rcnn}
# Each stage's defaults (steps, batch, lr, and the proposals' count and sampling) and the training sizes: config.json.
CONFIG = config.load()
FLAGS = {"maxProposals": "max_proposals", "roisPerImage": "rois_per_image"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--data", required=True, nargs="+", help="the generator's folders (annotations.json + images/), their images one after another")
    p.add_argument("--out", required=True, help="state_dict .pth to write")
    p.add_argument("--backbone", help="faster-rcnn: the pretrain stage's .pth; fast-rcnn and rcnn: the faster-rcnn stage's (its fine-tuned backbone, frozen)")
    p.add_argument("--proposals", nargs="+", help="selective-search proposals, `rcnn-serve proposals --json` lines (fast-rcnn, rcnn): "
                   "one file or more, together covering the --data images")
    p.add_argument("--max-proposals", type=int, help="fast-rcnn, rcnn: proposals read per image")
    p.add_argument("--rois-per-image", type=int, help="rcnn: warped regions sampled per image")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="faster-rcnn: start from a faster-rcnn stage's .pth (a second round) instead of --backbone; "
                   "fast-rcnn: start the head from a faster-rcnn stage's box head (the same layers)")
    p.add_argument("--sizes", type=lambda v: tuple(int(x) for x in v.split(",")), default=tuple(CONFIG["trainSizes"]),
                   help="faster-rcnn, fast-rcnn: short sides to draw from per batch (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda: the same steps; CUDA's kernels round differently, so its weights are "
                   "not bitwise a CPU run's")
    p.add_argument("--freeze-backbone", action="store_true", help="faster-rcnn: train the RPN and head only (the backbone is fine-tuned by default)")
    args = p.parse_args()
    for k, v in CONFIG["stages"][args.stage].items():
        if getattr(args, FLAGS.get(k, k)) is None:
            setattr(args, FLAGS.get(k, k), v)
    if args.stage != "pretrain" and not (args.backbone or (args.stage == "faster-rcnn" and args.init)):
        p.error(f"{args.stage} needs --backbone (a pretrain or faster-rcnn stage's .pth)")
    if args.stage in ("fast-rcnn", "rcnn") and not args.proposals:
        p.error(f"{args.stage} needs --proposals")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    if args.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode
    seed_everything(args.seed)
    data = CocoShapes(args.data)
    state = {k: v.cpu() for k, v in STAGES[args.stage](args, data).items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(state, args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

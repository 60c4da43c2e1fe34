"""The default package's networks and data, shared by its training stages
(train_shapes.py) and its exporter (export_shapes.py).

One small backbone in the VGG family (3x3 convolutions, BatchNorm, max
pooling; stride 8, 128 channels, two dilated 3x3 layers for a receptive field
of about 200 px) carries three heads:

    faster-rcnn  RPN over 15 anchors per cell + RoIAlign 7x7 + two-layer MLP head
    fast-rcnn    RoI max pooling 7x7 on the same map + two-layer MLP head, trained
                 on our TypeScript selective-search proposals (Girshick 2015)
    rcnn         the backbone on each warped region (96x96 with 8 px of context,
                 the paper's 227 / 16 px scaled down) + two FC layers + a linear
                 softmax classifier and class-specific box regressor (Girshick 2014
                 used linear SVMs; a softmax layer is the variant its appendix compares)
"""
import json
import os
import random

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign, batched_nms, box_iou, roi_align

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# The package's inference size (short side, long side at most): on 200 validation images round 10 scored
# AP50 0.820 at 480, 0.827 at 512 and at 544 (AP 0.591, 0.596, 0.595), round 11 0.826 at 480 and 0.831
# at 512; 512 is the cheaper of the best two.
MIN_SIZE, MAX_SIZE = 512, 640
# Faster R-CNN's test scales (model.json's pipelines.faster-rcnn.testScales): (short side, long side at most,
# object sizes kept, as sqrt(box area) in that scale's input pixels, [low, high), and whether the mirrored image
# runs too). Against one scale at MIN_SIZE, on the 200 validation images: AP50 85.2 -> 89.7, AP 61.9 -> 66.7
# (small 54.5 -> 63.5, large 61.6 -> 68.9): the larger scale finds small objects, the smaller one keeps large
# objects inside the receptive field and the anchors. Without the flip 89.2; flipping at 416 instead 89.3;
# 448 / 512 / 640 with no ranges 85.8; a fourth scale (640, under 128) 89.2; 896 in place of 768, 88.1; the
# ranges' edges moved by 16 px, up to 0.2 less; merging at NMS 0.4 or 0.6 instead of 0.5, 89.1.
TEST_SCALES = ((416, 520, 112, None, False), (MIN_SIZE, MAX_SIZE, None, None, True), (768, 960, None, 96, False))
STRIDE = 8
CHANNELS = 128
POOL = 7
HIDDEN = 256
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# R-CNN's warp: the region grown so that CONTEXT px of the WARP x WARP crop are context. On the first 100
# validation images, 64 with 4 px scored AP50 70.2 (round 11's backbone); on round 12's, 64 with 16 px
# 54.7 (the region at 32 px) and 96 with 16 px 73.5 (heads of 1500 steps), 96 with 8 px 74.8: the region's
# resolution decides.
WARP = 96
CONTEXT = 8
# The pretrain stage's crops of objects and background (its own, older size).
# R-CNN's test time: each crop also runs mirrored and the two predictions are averaged; after NMS, box voting at
# this IoU. On the 200 validation images (the first 1000 `fast` regions) AP50 / AP 77.96 / 57.77 -> 79.15 / 59.33
# (mirror) -> 79.52 / 61.09 (and voting; at IoU 0.5, 0.6 and 0.7: 79.46 / 58.82, 79.46 / 60.24, 79.33 / 61.16); the
# two passes' detections merged by NMS instead of averaged per region gave 78.88 / 57.92.
RCNN_MIRROR = True
RCNN_BOX_VOTING = 0.65
PRETRAIN_WARP = 64
PRETRAIN_CONTEXT = 4
# R-CNN's pool5: 6x6, AlexNet's. On the 200 validation images (torch, with the test-time mirror and voting) a
# 6x6 head trained on `fast` regions scored AP50 80.32 (AP 63.05) against 79.52 (61.09) for the 4x4 one on `single`'s.
RCNN_POOL = 6


def conv(cin, cout, stride=1, dilation=1):
    return [nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallVGG(nn.Module):
    """conv3x3/2 24, maxpool, conv 48, conv 48, maxpool, conv 96, conv 128, conv 128 (dilation 2), conv 128 (dilation 4)."""

    out_channels = CHANNELS

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *conv(3, 24, stride=2), nn.MaxPool2d(2),
            *conv(24, 48), *conv(48, 48), nn.MaxPool2d(2),
            *conv(48, 96), *conv(96, CHANNELS), *conv(CHANNELS, CHANNELS, dilation=2), *conv(CHANNELS, CHANNELS, dilation=4),
        )

    def forward(self, x):
        return self.body(x)


class BackboneAsDict(nn.Module):
    """torchvision's detectors take a backbone returning named maps."""

    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk
        self.out_channels = trunk.out_channels

    def forward(self, x):
        return {"0": self.trunk(x)}


class MLPHead(nn.Module):
    """fc6, fc7 (torchvision's TwoMLPHead) with dropout, as the papers' heads. normalize: BatchNorm on fc6's
    input. RoI max-pooled features are all positive and large (mean 2, max 12 here): without centring, one
    SGD step moves all of a unit's 6272 weights the same way and the unit dies (measured: at lr 0.01 99.9%
    of fc6 was inactive after training, and the head predicted the class prior for every region)."""

    def __init__(self, in_features, hidden, normalize=False):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features) if normalize else nn.Identity()
        self.fc6 = nn.Linear(in_features, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.drop(nn.functional.relu(self.fc6(self.norm(x.flatten(start_dim=1)))))
        return self.drop(nn.functional.relu(self.fc7(x)))


def faster_rcnn(num_classes, min_size=MIN_SIZE):
    """min_size: a tuple trains at a random short side per batch (torchvision picks one per call)."""
    anchors = AnchorGenerator(((16, 32, 64, 128, 256),), ((0.5, 1.0, 2.0),))
    return FasterRCNN(BackboneAsDict(SmallVGG()), num_classes=None, min_size=min_size, max_size=MAX_SIZE, image_mean=MEAN, image_std=STD,
                      rpn_anchor_generator=anchors, rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
                      rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=300,
                      box_roi_pool=MultiScaleRoIAlign(["0"], POOL, 2), box_head=MLPHead(CHANNELS * POOL * POOL, HIDDEN, normalize=True),
                      box_predictor=FastRCNNPredictor(HIDDEN, num_classes), box_batch_size_per_image=128)


def detect_multi_scale(model, image01, scales=TEST_SCALES):
    """A FasterRCNN's detections on one image [3, H, W] in [0, 1] at each test scale (and mirrored, where the scale
    says), each kept within its object sizes, merged by per-class NMS (the model's threshold and detections per image); the reference of the
    TypeScript pipeline's multi-scale testing (src/pipelines/faster-rcnn/test-scales.ts)."""
    h, w = image01.shape[1:]
    boxes, scores, labels = [], [], []
    for min_size, max_size, low, high, flip in scales:
        model.transform.min_size, model.transform.max_size = (min_size,), max_size
        rh, rw = model.transform.resize(image01, None)[0].shape[1:]
        for mirrored in (False, True) if flip else (False,):
            det = model([image01.flip(-1) if mirrored else image01])[0]
            b = det["boxes"]
            if mirrored:
                b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1)
            side = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) * (rw / w) * (rh / h)).sqrt()
            keep = (side >= (low or 0)) & (side < (high or float("inf")))
            boxes.append(b[keep]), scores.append(det["scores"][keep]), labels.append(det["labels"][keep])
    model.transform.min_size, model.transform.max_size = (MIN_SIZE,), MAX_SIZE
    boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    keep = batched_nms(boxes, scores, labels, model.roi_heads.nms_thresh)[:model.roi_heads.detections_per_img]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


class RoiHead(nn.Module):
    """Fast R-CNN's head: RoI max-pooled features [R, C, 7, 7] -> class logits [R, K+1], class-specific deltas [R, 4(K+1)]."""

    def __init__(self, num_classes):
        super().__init__()
        self.box_head = MLPHead(CHANNELS * POOL * POOL, HIDDEN, normalize=True)
        self.box_predictor = FastRCNNPredictor(HIDDEN, num_classes)

    def forward(self, pooled):
        return self.box_predictor(self.box_head(pooled))


class RcnnHead(nn.Module):
    """Backbone features of warped crops, channels-last [N, WARP / STRIDE, WARP / STRIDE, C] -> logits,
    class-specific deltas: max pool to 6x6 (R-CNN's pool5), fc6, fc7, then the linear classifier and box regressor."""

    def __init__(self, num_classes):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(RCNN_POOL)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(CHANNELS * RCNN_POOL * RCNN_POOL, HIDDEN), nn.ReLU(inplace=True),
                                nn.Dropout(0.3), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(inplace=True), nn.Dropout(0.3))
        self.cls_score = nn.Linear(HIDDEN, num_classes)
        self.bbox_pred = nn.Linear(HIDDEN, 4 * num_classes)

    def forward(self, features_nhwc):
        x = self.fc(self.pool(features_nhwc.permute(0, 3, 1, 2)))
        return self.cls_score(x), self.bbox_pred(x)


def context_boxes(boxes, size, context):
    """Grow xyxy boxes about their centres so that, warped to size px, context px on each side are context."""
    grow = size / (size - 2 * context)
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * grow
    return torch.cat([c - half, c + half], dim=1)


def warp_regions(image, boxes, size, context):
    """Normalised image [3, H, W], proposals xyxy (pixels) -> warped crops [N, 3, size, size]: bilinear
    samples, 2x2 per output pixel, zero (the mean colour) outside the image. The TypeScript twin is roiAlign
    with aligned=true, samplingRatio 2 on the channels-last image."""
    return roi_align(image[None], [context_boxes(boxes, size, context)], (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def vote_boxes(kept_boxes, kept_labels, boxes, scores, labels, iou):
    """Box voting (Gidaris & Komodakis 2015, section 6): each kept detection's box becomes the score-weighted mean of the
    candidates of its class that overlap it by IoU >= iou, itself among them. The TypeScript twin is voteBoxes."""
    weights = ((box_iou(kept_boxes, boxes) >= iou) & (kept_labels[:, None] == labels[None])).float() * scores[None]
    return (weights @ boxes) / weights.sum(1, keepdim=True)


def detect_rcnn(trunk, head, image_uint8, proposals, postprocess, mirror=RCNN_MIRROR):
    """R-CNN on one HWC uint8 image: every proposal (xyxy pixels) warped, through the backbone's trunk and the head;
    with `mirror`, each crop mirrored too and the two predictions averaged (class probabilities, and box deltas with
    dx negated for the mirrored crop: AlexNet's test-time reflections); then torchvision's post-processing with
    `postprocess` (model.json's settings), and box voting where it sets boxVoting. The reference of
    src/pipelines/rcnn.ts."""
    h, w = image_uint8.shape[:2]
    crops = warp_regions(normalise(image_uint8), proposals, WARP, CONTEXT)
    logits, deltas = head(trunk(crops).permute(0, 2, 3, 1))
    probs = torch.softmax(logits, -1)
    if mirror:
        logits_m, deltas_m = head(trunk(crops.flip(-1)).permute(0, 2, 3, 1))
        deltas_m = deltas_m.reshape(len(proposals), -1, 4) * torch.tensor([-1.0, 1.0, 1.0, 1.0])
        probs = (probs + torch.softmax(logits_m, -1)) / 2
        deltas = (deltas + deltas_m.reshape(deltas.shape)) / 2
    # Every candidate over the score threshold (an NMS at IoU 1 drops none), then the NMS, so that voting sees them all.
    # (torchvision drops boxes under 1e-2 px, model.json's minSize.)
    candidates = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, BOX_WEIGHTS, postprocess["scoreThreshold"], 1.0, logits.numel())
    boxes, scores, labels = (t[0] for t in candidates.postprocess_detections(probs.log(), deltas, [proposals], [(h, w)]))
    keep = batched_nms(boxes, scores, labels, postprocess["nmsThreshold"])[:postprocess["detectionsPerImage"]]
    kept = boxes[keep]
    if postprocess.get("boxVoting") is not None and len(keep):
        kept = vote_boxes(kept, labels[keep], boxes, scores, labels, postprocess["boxVoting"])
    return {"boxes": kept, "scores": scores[keep], "labels": labels[keep]}


def normalise(image_uint8):
    """HWC uint8 RGB -> CHW float, normalised as the backbone was trained."""
    x = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


class CocoShapes:
    """The generator's COCO folders, one after another: images with xyxy boxes and labels 1..K."""

    def __init__(self, roots):
        self.categories = None
        self.paths, self.targets = [], []
        for root in roots:
            with open(os.path.join(root, "annotations.json")) as f:
                d = json.load(f)
            categories = [c["name"] for c in sorted(d["categories"], key=lambda c: c["id"])]
            if self.categories not in (None, categories):
                raise SystemExit(f"{root}'s categories {categories} are not {self.categories}")
            self.categories = categories
            images = sorted(d["images"], key=lambda im: im["id"])
            by_image = {im["id"]: [] for im in images}
            for a in d["annotations"]:
                by_image[a["image_id"]].append(a)
            for im in images:
                anns = by_image[im["id"]]
                boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns],
                                     dtype=torch.float32).reshape(-1, 4)
                self.paths.append(os.path.abspath(os.path.join(root, im["file_name"])))
                self.targets.append({"boxes": boxes, "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)})

    def __len__(self):
        return len(self.paths)

    def pixels(self, i):
        return np.asarray(Image.open(self.paths[i]).convert("RGB"))

    def load_proposals(self, jsonl_files):
        """Selective-search boxes from `rcnn-serve proposals --json` lines, in image order."""
        by_path = {}
        for jsonl in jsonl_files:
            with open(jsonl) as f:
                for line in f:
                    r = json.loads(line)
                    by_path[os.path.abspath(r["path"])] = torch.tensor(r["proposals"], dtype=torch.float32).reshape(-1, 4)
        missing = [path for path in self.paths if path not in by_path]
        if missing:
            raise SystemExit(f"{', '.join(jsonl_files)} have no proposals for {len(missing)} images, e.g. {missing[0]}")
        return [by_path[path] for path in self.paths]


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

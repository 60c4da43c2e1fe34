#!/usr/bin/python3
"""Export a torchvision FasterRCNN as an rcnn-serve model package.

    /usr/bin/python3 models/recipes/torchvision/export_torchvision.py --arch fasterrcnn_resnet50_fpn \\
        --weights DEFAULT --out models/fasterrcnn-resnet50-fpn-coco

The package is three ONNX graphs, one per stage that has weights, and a
model.json that carries every number the TypeScript pipeline needs:

    backbone.onnx   image [1, 3, H, W] (normalised, padded)  -> one feature map per level, [1, h, w, C] (NHWC)
    rpn_head.onnx   the feature maps                          -> objectness [1, A, h, w] and deltas [1, 4A, h, w] per level
    box_head.onnx   pooled RoI features [R, C, 7, 7]          -> class logits [R, K+1], class-specific deltas [R, 4(K+1)]

Everything between (anchors, RPN decoding and NMS, RoIAlign, post-processing)
is TypeScript, so graphs stay free of data-dependent shapes; whole-model
exports of torchvision detectors are documented for a fixed image size only.

--weights: DEFAULT (torchvision's COCO weights; needs a machine that can
download them, or a torch hub cache that has them), none (seeded random
weights), or FILE.pth (a state_dict of the same architecture, e.g. a user's
fine-tuned model; --num-classes must match it).
"""
import argparse
import math
import os
import sys

import torch
import torchvision
from torch import nn
from torchvision.models import detection
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rcnn_package import BackboneGraph, BoxHeadGraph, RpnHeadGraph, calibrate_batchnorm, export, manifest, write_manifest  # noqa: E402

ARCHS = {
    "fasterrcnn_resnet50_fpn": (detection.fasterrcnn_resnet50_fpn, detection.FasterRCNN_ResNet50_FPN_Weights),
    "fasterrcnn_resnet50_fpn_v2": (detection.fasterrcnn_resnet50_fpn_v2, detection.FasterRCNN_ResNet50_FPN_V2_Weights),
    "fasterrcnn_mobilenet_v3_large_fpn": (detection.fasterrcnn_mobilenet_v3_large_fpn, detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (detection.fasterrcnn_mobilenet_v3_large_320_fpn, detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights),
    "tiny_fpn": (None, None),
}

class TinyTrunk(nn.Module):
    """A four-stage conv trunk (strides 4, 8, 16, 32; 16-96 channels) with
    BatchNorm, small enough for a fixture package of a few MB."""

    def __init__(self):
        super().__init__()

        def stage(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.layer1 = stage(16, 24, 2)
        self.layer2 = stage(24, 40, 2)
        self.layer3 = stage(40, 64, 2)
        self.layer4 = stage(64, 96, 2)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def tiny_fpn(num_classes):
    backbone = BackboneWithFPN(TinyTrunk(), {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, [24, 40, 64, 96], 48,
                               extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    return detection.FasterRCNN(backbone, num_classes=None, min_size=320, max_size=512, rpn_anchor_generator=anchors,
                                box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
                                box_head=TwoMLPHead(48 * 7 * 7, 128), box_predictor=FastRCNNPredictor(128, num_classes))


def build_model(arch, weights="none", num_classes=None, seed=0, logit_scale=1.0):
    """The torchvision model the package is exported from, in eval mode.
    Also used by the parity and bench scripts, so they run the same weights."""
    if arch not in ARCHS:
        sys.exit(f"unknown --arch {arch!r}; choose one of: {', '.join(ARCHS)}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    factory, weights_enum = ARCHS[arch]
    if arch == "tiny_fpn":
        if weights not in ("none", None) and not os.path.isfile(weights):
            sys.exit("--arch tiny_fpn has no published weights: use --weights none or a FILE.pth")
        model = tiny_fpn(num_classes or 11)
        calibrate_batchnorm(model, g)
    elif weights == "DEFAULT":
        model = factory(weights=weights_enum.DEFAULT, num_classes=num_classes)
    else:
        model = factory(weights=None, weights_backbone=None, num_classes=num_classes or 91)
        if weights in ("none", None):
            calibrate_batchnorm(model, g)
    if weights not in ("none", None, "DEFAULT"):
        state = torch.load(weights, map_location="cpu")
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    if logit_scale != 1.0:
        # Untrained heads give near-uniform scores; scaling the classification
        # layers spreads them, so the fixture's detections are not all ties.
        with torch.no_grad():
            model.rpn.head.cls_logits.weight.mul_(logit_scale)
            model.rpn.head.cls_logits.bias.mul_(logit_scale)
            model.roi_heads.box_predictor.cls_score.weight.mul_(logit_scale)
            model.roi_heads.box_predictor.cls_score.bias.mul_(logit_scale)
    return model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, choices=sorted(ARCHS))
    p.add_argument("--weights", default="none", help="DEFAULT | none | FILE.pth (default: none)")
    p.add_argument("--num-classes", type=int, default=None, help="classes including background (torchvision's count; COCO: 91)")
    p.add_argument("--classes", default=None, help="comma-separated class names, background excluded (default: COCO's for DEFAULT, else class_1..)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights (--weights none)")
    p.add_argument("--logit-scale", type=float, default=1.0, help="multiply the RPN and box classifier logits (untrained fixtures)")
    p.add_argument("--out", required=True, help="package folder to write")
    args = p.parse_args()

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = build_model(args.arch, args.weights, args.num_classes, args.seed, args.logit_scale)
    os.makedirs(args.out, exist_ok=True)

    t = model.transform
    side = int(t.min_size[-1])
    # Trace at a non-square size so no axis is mistaken for another; all axes are dynamic.
    image = torch.randn(1, 3, side, side + 2 * t.size_divisible)
    with torch.no_grad():
        feats = model.backbone(image)
    level_names = list(feats.keys())
    export(BackboneGraph(model.backbone), (image,), os.path.join(args.out, "backbone.onnx"), ["image"],
           [f"feature_{n}" for n in level_names],
           {"image": {2: "height", 3: "width"}, **{f"feature_{n}": {1: f"h_{n}", 2: f"w_{n}"} for n in level_names}})
    feat_list = tuple(f.permute(0, 2, 3, 1) for f in feats.values())
    export(RpnHeadGraph(model.rpn.head), feat_list, os.path.join(args.out, "rpn_head.onnx"),
           [f"feature_{n}" for n in level_names], [f"objectness_{n}" for n in level_names] + [f"deltas_{n}" for n in level_names],
           {**{f"feature_{n}": {1: f"h_{n}", 2: f"w_{n}"} for n in level_names},
            **{f"objectness_{n}": {2: f"h_{n}", 3: f"w_{n}"} for n in level_names},
            **{f"deltas_{n}": {2: f"h_{n}", 3: f"w_{n}"} for n in level_names}})
    pooler = model.roi_heads.box_roi_pool
    channels = feats[pooler.featmap_names[0]].shape[1]
    pooled = torch.randn(3, channels, *pooler.output_size)
    export(BoxHeadGraph(model.roi_heads), (pooled,), os.path.join(args.out, "box_head.onnx"), ["pooled"],
           ["class_logits", "box_deltas"], {"pooled": {0: "rois"}, "class_logits": {0: "rois"}, "box_deltas": {0: "rois"}})
    weights = ARCHS[args.arch][1]
    categories = weights.DEFAULT.meta["categories"] if args.weights == "DEFAULT" and weights else None
    write_manifest(args.out, manifest(model, args.arch, args, level_names, categories))


if __name__ == "__main__":
    main()

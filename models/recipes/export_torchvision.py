#!/usr/bin/python3
"""Export a torchvision FasterRCNN as an rcnn-serve model package.

    /usr/bin/python3 models/recipes/export_torchvision.py --arch fasterrcnn_resnet50_fpn \\
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
import json
import math
import os
import sys
from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.models import detection
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

ARCHS = {
    "fasterrcnn_resnet50_fpn": (detection.fasterrcnn_resnet50_fpn, detection.FasterRCNN_ResNet50_FPN_Weights),
    "fasterrcnn_resnet50_fpn_v2": (detection.fasterrcnn_resnet50_fpn_v2, detection.FasterRCNN_ResNet50_FPN_V2_Weights),
    "fasterrcnn_mobilenet_v3_large_fpn": (detection.fasterrcnn_mobilenet_v3_large_fpn, detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (detection.fasterrcnn_mobilenet_v3_large_320_fpn, detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights),
    "tiny_fpn": (None, None),
}
OPSET = 16


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


def seeded_image(g, height=320, width=416):
    """A smooth, photo-like random image in [0, 1]: coarse noise upsampled plus a gradient."""
    coarse = torch.rand(1, 3, height // 16, width // 16, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]
    ramp = torch.linspace(0, 0.3, width).view(1, 1, width)
    return (0.8 * smooth + ramp + 0.05 * torch.rand(3, height, width, generator=g)).clamp(0, 1)


def calibrate_batchnorm(model, g):
    """Seeded BatchNorm for untrained networks: random affine weights, and
    running statistics measured on a seeded image, layer by layer, so each
    BatchNorm sees normalised inputs, as in a trained network. Left at their
    defaults (mean 0, var 1), a random ResNet-50 grows activations by orders of
    magnitude with depth and saturates a MobileNet into exact ties, and the
    comparison with another runtime then measures that ill-conditioning, not
    the implementation."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, torchvision.ops.FrozenBatchNorm2d))]
    for m in norms:
        n = m.weight.shape[0]
        m.weight.data = 0.5 + torch.rand(n, generator=g)
        m.bias.data = 0.1 * torch.randn(n, generator=g)

    def measure(module, inputs):
        x = inputs[0]
        module.running_mean.data = x.mean(dim=(0, 2, 3))
        module.running_var.data = x.var(dim=(0, 2, 3)) + 1e-3

    hooks = [m.register_forward_pre_hook(measure) for m in norms]
    model.eval()
    with torch.no_grad():
        model([seeded_image(g)])
    for h in hooks:
        h.remove()


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


class BackboneGraph(nn.Module):
    """Image (NCHW) -> feature maps, channels-last (NHWC): the TypeScript RoI
    kernels stream contiguous channels, and ONNX Runtime transposes faster
    than JavaScript can."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, image):
        return tuple(f.permute(0, 2, 3, 1) for f in self.backbone(image).values())


class RpnHeadGraph(nn.Module):
    """NHWC feature maps -> per level objectness [1, A, h, w] and deltas [1, 4A, h, w]."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, *features):
        logits, deltas = self.head([f.permute(0, 3, 1, 2) for f in features])
        return tuple(logits) + tuple(deltas)


class BoxHeadGraph(nn.Module):
    def __init__(self, roi_heads):
        super().__init__()
        self.box_head = roi_heads.box_head
        self.box_predictor = roi_heads.box_predictor

    def forward(self, pooled):
        return self.box_predictor(self.box_head(pooled))


def export(module, args, path, input_names, output_names, dynamic_axes):
    # torch 1.13's exporter restores the training flag the module had before
    # the call; a fresh wrapper is in training mode, so set eval() explicitly.
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
    module.eval()


def class_names(arch, weights, num_classes, given=None):
    if given:
        names = ["__background__"] + given.split(",")
        if len(names) != num_classes:
            sys.exit(f"--classes names {len(names) - 1} classes but the model has {num_classes - 1} (plus background)")
        return names
    if weights == "DEFAULT":
        return list(ARCHS[arch][1].DEFAULT.meta["categories"])
    return ["__background__"] + [f"class_{i}" for i in range(1, num_classes)]


def manifest(model, arch, args, level_names):
    t = model.transform
    rpn = model.rpn
    roi = model.roi_heads
    pooler = roi.box_roi_pool
    gen = rpn.anchor_generator
    num_classes = roi.box_predictor.cls_score.out_features
    return OrderedDict([
        ("format", "rcnn-serve/model"),
        ("version", 1),
        ("name", os.path.basename(os.path.normpath(args.out))),
        ("description", f"torchvision {arch}, weights {args.weights if args.weights in ('none', 'DEFAULT') else os.path.basename(args.weights)}" + (f", seed {args.seed}" if args.weights == "none" else "")
         + (f", classification logits scaled x{args.logit_scale}" if args.logit_scale != 1.0 else "")),
        ("source", OrderedDict([("exporter", "models/recipes/export_torchvision.py"), ("arch", arch),
                                ("weights", args.weights if args.weights in ("none", "DEFAULT") else os.path.basename(args.weights)),
                                ("seed", args.seed), ("logitScale", args.logit_scale), ("torch", torch.__version__),
                                ("torchvision", torchvision.__version__)])),
        ("classes", class_names(arch, args.weights, num_classes, args.classes)),
        ("input", OrderedDict([("channelOrder", "RGB"), ("pixelRange", 1), ("mean", list(t.image_mean)), ("std", list(t.image_std)),
                               ("minSize", int(t.min_size[-1])), ("maxSize", int(t.max_size)), ("sizeDivisible", t.size_divisible)])),
        ("backbone", OrderedDict([("file", "backbone.onnx"), ("input", "image"), ("featureLayout", "NHWC"),
                                  ("features", [OrderedDict([("name", n), ("output", f"feature_{n}")]) for n in level_names])])),
        ("pipelines", OrderedDict([("faster-rcnn", OrderedDict([
            ("rpn", OrderedDict([
                ("head", OrderedDict([("file", "rpn_head.onnx"), ("inputs", [f"feature_{n}" for n in level_names]),
                                      ("objectness", [f"objectness_{n}" for n in level_names]),
                                      ("deltas", [f"deltas_{n}" for n in level_names])])),
                ("features", level_names),
                ("anchors", OrderedDict([("generator", "torchvision"), ("sizes", [list(s) for s in gen.sizes]),
                                         ("aspectRatios", [list(a) for a in gen.aspect_ratios])])),
                ("boxCoder", OrderedDict([("weights", list(rpn.box_coder.weights)), ("clamp", rpn.box_coder.bbox_xform_clip)])),
                ("preNmsTopN", rpn._pre_nms_top_n["testing"]), ("postNmsTopN", rpn._post_nms_top_n["testing"]),
                ("nmsThreshold", rpn.nms_thresh), ("minSize", rpn.min_size), ("scoreThreshold", rpn.score_thresh),
            ])),
            # The pooler reads the maps it names that the backbone has, in the backbone's
            # order (torchvision's _filter_input): the MobileNet models name 0-3 but have 0 and 1.
            ("roiOp", OrderedDict([("type", "roi-align"), ("features", [n for n in level_names if n in pooler.featmap_names]),
                                   ("outputSize", list(pooler.output_size)),
                                   ("samplingRatio", pooler.sampling_ratio), ("aligned", False),
                                   ("canonicalScale", pooler.canonical_scale), ("canonicalLevel", pooler.canonical_level)])),
            ("boxHead", OrderedDict([("file", "box_head.onnx"), ("input", "pooled"), ("classLogits", "class_logits"), ("boxDeltas", "box_deltas")])),
            ("boxCoder", OrderedDict([("weights", list(roi.box_coder.weights)), ("clamp", roi.box_coder.bbox_xform_clip)])),
            ("postprocess", OrderedDict([("scoreThreshold", roi.score_thresh), ("nmsThreshold", roi.nms_thresh),
                                         ("detectionsPerImage", roi.detections_per_img), ("minSize", 0.01)])),
        ]))])),
    ])


def write_manifest(out_dir, m):
    """model.json beside the graphs, and a line naming what the package holds."""
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    names = sorted(os.listdir(out_dir))
    total = sum(os.path.getsize(os.path.join(out_dir, n)) for n in names)
    print(f"wrote {out_dir}: {', '.join(names)} ({total / 1e6:.1f} MB)")


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
    write_manifest(args.out, manifest(model, args.arch, args, level_names))


if __name__ == "__main__":
    main()

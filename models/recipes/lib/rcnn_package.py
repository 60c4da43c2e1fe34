"""An rcnn-serve model package from a torchvision FasterRCNN: the three graph
wrappers (backbone with channels-last outputs, RPN head, box head), their
ONNX export, the manifest that carries every number the TypeScript pipeline
needs, and seeded BatchNorm for untrained networks. Shared by the exporters
of every role: torchvision/, backbones/, shapes-vgg/.
"""
import inspect
import json
import os
from collections import OrderedDict

import torch
import torchvision
from torch import nn

OPSET = 16


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
    # torch 2.9 and later export through dynamo by default; these graphs are the
    # TorchScript exporter's, as torch 1.13 writes them (the GPU machine has 2.11).
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True, **legacy)
    module.eval()


def class_names(num_classes, given=None, categories=None):
    """Class names by id, background first: `given` (comma-separated, background excluded), else the
    weights' own `categories` (torchvision's COCO names), else class_1.."""
    if given:
        names = ["__background__"] + given.split(",")
        if len(names) != num_classes:
            raise SystemExit(f"--classes names {len(names) - 1} classes but the model has {num_classes - 1} (plus background)")
        return names
    if categories:
        return list(categories)
    return ["__background__"] + [f"class_{i}" for i in range(1, num_classes)]


def manifest(model, arch, args, level_names, categories=None):
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
        ("source", OrderedDict([("exporter", "models/recipes/torchvision/export_torchvision.py"), ("arch", arch),
                                ("weights", args.weights if args.weights in ("none", "DEFAULT") else os.path.basename(args.weights)),
                                ("seed", args.seed), ("logitScale", args.logit_scale), ("torch", torch.__version__),
                                ("torchvision", torchvision.__version__)])),
        ("classes", class_names(num_classes, args.classes, categories)),
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




#!/usr/bin/python3
"""Export the default package: one backbone and the heads of all three
pipelines, trained by train_shapes.py (see build_default.sh).

    /usr/bin/python3 models/recipes/shapes-vgg/export_shapes.py --faster data/weights/faster.pth --fast data/weights/fast.pth \\
        --rcnn data/weights/rcnn.pth --classes data/train/annotations.json --out models/shapes-vgg

    backbone.onnx        image [N, 3, H, W] -> feature_0 [N, H/8, W/8, 128] (NHWC; N > 1 for R-CNN's crops)
    rpn_head.onnx        feature_0 -> objectness, deltas (Faster R-CNN)
    box_head.onnx        RoIAlign 7x7 features -> logits, deltas (Faster R-CNN)
    fast_rcnn_head.onnx  RoIPool 7x7 features -> logits, deltas (Fast R-CNN)
    rcnn_head.onnx       per-crop features [N, 12, 12, 128] -> logits, deltas (R-CNN)
"""
import argparse
import json
import os
import sys
from collections import OrderedDict
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rcnn_package import BackboneGraph, BoxHeadGraph, RpnHeadGraph, export, manifest, write_manifest  # noqa: E402
from shapes_common import (CHANNELS, CONTEXT, POOL, RCNN_BOX_VOTING, RCNN_MIRROR, STRIDE, TEST_SCALES, WARP, RcnnHead, RoiHead,  # noqa: E402
                           faster_rcnn)

# The papers' selective search: `fast` mode, about 1100 regions per image here. On 100 validation images it
# lifted R-CNN's AP50 from 74.8 to 79.9 and Fast R-CNN's from 82.3 to 83.8 against `single` (about 190), for
# about three times the time; a request's `mode` picks `single` back.
PROPOSALS = OrderedDict([("method", "selective-search"), ("mode", "fast"), ("maxProposals", 2000), ("minSize", 0), ("seed", 0)])
# The papers' per-class NMS for R-CNN and Fast R-CNN (and py-faster-rcnn's): 0.3, not torchvision's 0.5. Their ~1100
# selective-search regions leave more near-duplicates than the RPN's 300: on the 200 validation images Fast R-CNN
# scored AP50 83.2 at 0.5, 85.1 at 0.4, 85.3 at 0.3, 85.1 at 0.25, 85.0 at 0.2; R-CNN 77.5 at 0.5, 78.0 at 0.3;
# Faster R-CNN 85.2 at 0.5 and 0.4, 85.0 at 0.3 (it keeps torchvision's 0.5).
CLASS_NMS = 0.3


def head_spec(file):
    return OrderedDict([("file", file), ("input", "features"), ("classLogits", "class_logits"), ("boxDeltas", "box_deltas")])


def test_scale(min_size, max_size, low, high, flip):
    scale = OrderedDict([("minSize", min_size), ("maxSize", max_size)])
    if low is not None:
        scale["minObjectSize"] = low
    if high is not None:
        scale["maxObjectSize"] = high
    if flip:
        scale["flip"] = True
    return scale


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faster", required=True)
    p.add_argument("--fast", required=True)
    p.add_argument("--rcnn", required=True)
    p.add_argument("--classes", required=True, help="the dataset's annotations.json (category names, in id order)")
    # On the 200 validation images (torch, the 3000-step R-CNN head, mirror and voting) AP50 at the first 700, 750, 800,
    # 850, 900, 1000, 1200 and 2000 regions: 80.26, 80.43, 80.65, 80.50, 80.34, 80.32, 80.03 and 79.92.
    p.add_argument("--rcnn-proposals", type=int, default=800, help="R-CNN's default proposal count (it runs the CNN once per region)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)

    with open(args.classes) as f:
        names = [c["name"] for c in sorted(json.load(f)["categories"], key=lambda c: c["id"])]
    k = len(names) + 1
    model = faster_rcnn(k)
    model.load_state_dict(torch.load(args.faster, map_location="cpu"))
    model.eval()
    fast = RoiHead(k)
    fast.load_state_dict(torch.load(args.fast, map_location="cpu"))
    rcnn = RcnnHead(k)
    rcnn.load_state_dict(torch.load(args.rcnn, map_location="cpu"))
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)  # noqa: E731

    image = torch.randn(2, 3, 352, 480)
    export(BackboneGraph(model.backbone), (image,), out("backbone.onnx"), ["image"], ["feature_0"],
           {"image": {0: "batch", 2: "height", 3: "width"}, "feature_0": {0: "batch", 1: "h", 2: "w"}})
    feature = model.backbone(image[:1])["0"].permute(0, 2, 3, 1).detach()
    export(RpnHeadGraph(model.rpn.head), (feature,), out("rpn_head.onnx"), ["feature_0"], ["objectness_0", "deltas_0"],
           {"feature_0": {1: "h", 2: "w"}, "objectness_0": {2: "h", 3: "w"}, "deltas_0": {2: "h", 3: "w"}})
    pooled = torch.randn(3, CHANNELS, POOL, POOL)
    export(BoxHeadGraph(model.roi_heads), (pooled,), out("box_head.onnx"), ["pooled"], ["class_logits", "box_deltas"],
           {"pooled": {0: "rois"}, "class_logits": {0: "rois"}, "box_deltas": {0: "rois"}})
    export(fast, (pooled,), out("fast_rcnn_head.onnx"), ["features"], ["class_logits", "box_deltas"],
           {"features": {0: "rois"}, "class_logits": {0: "rois"}, "box_deltas": {0: "rois"}})
    crops = torch.randn(3, WARP // STRIDE, WARP // STRIDE, CHANNELS)
    export(rcnn, (crops,), out("rcnn_head.onnx"), ["features"], ["class_logits", "box_deltas"],
           {"features": {0: "crops"}, "class_logits": {0: "crops"}, "box_deltas": {0: "crops"}})

    m = manifest(model, "shapes_vgg", SimpleNamespace(out=args.out, weights=os.path.basename(args.faster), seed=0, logit_scale=1.0,
                                                       classes=",".join(names)), ["0"])
    m["description"] = ("rcnn-serve's default: a small VGG-style backbone (stride 8, 128 channels) with R-CNN, Fast R-CNN and "
                        "Faster R-CNN heads, trained on the synthetic shapes dataset (models/recipes/shapes-vgg/build_default.sh)")
    m["source"] = OrderedDict([("recipe", "models/recipes/shapes-vgg/build_default.sh"), ("weights", [os.path.basename(w) for w in (args.faster, args.fast, args.rcnn)]),
                               ("torch", torch.__version__)])
    coder = OrderedDict([("weights", [10.0, 10.0, 5.0, 5.0]), ("clamp", m["pipelines"]["faster-rcnn"]["boxCoder"]["clamp"])])
    post = OrderedDict(m["pipelines"]["faster-rcnn"]["postprocess"], nmsThreshold=CLASS_NMS)
    m["pipelines"] = OrderedDict([
        ("rcnn", OrderedDict([("proposals", OrderedDict(PROPOSALS, maxProposals=args.rcnn_proposals)),
                              ("warp", OrderedDict([("size", [WARP, WARP]), ("context", CONTEXT), ("samplingRatio", 2)])),
                              ("feature", "0"), ("batchSize", 128), ("mirror", RCNN_MIRROR), ("head", head_spec("rcnn_head.onnx")),
                              ("boxCoder", coder), ("postprocess", OrderedDict(post, boxVoting=RCNN_BOX_VOTING))])),
        ("fast-rcnn", OrderedDict([("proposals", PROPOSALS), ("roiPool", OrderedDict([("feature", "0"), ("outputSize", [POOL, POOL])])),
                                   ("head", head_spec("fast_rcnn_head.onnx")), ("boxCoder", coder), ("postprocess", post)])),
        ("faster-rcnn", OrderedDict(m["pipelines"]["faster-rcnn"], testScales=[test_scale(*s) for s in TEST_SCALES])),
    ])
    write_manifest(args.out, m)


if __name__ == "__main__":
    main()

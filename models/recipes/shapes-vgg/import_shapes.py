#!/usr/bin/python3
"""Read a package that export_shapes.py wrote back into the training stages'
.pth files, so that a stage can start from the shipped weights instead of
the whole recipe (about 8 hours here): for example, retrain the Fast R-CNN
or R-CNN head on the shipped backbone.

    /usr/bin/python3 models/recipes/shapes-vgg/import_shapes.py --package models/shapes-vgg --out data/weights-package
    -> faster.pth (backbone, RPN, box head), fast.pth, rcnn.pth

The exporter folds each BatchNorm into the convolution before it, so the
backbone comes back with the folded weights and identity BatchNorm (scale 1,
shift 0, mean 0, variance 1 - eps): the same function in inference mode and
for the stages that freeze the backbone (fast-rcnn, rcnn); a faster-rcnn
round from it would fine-tune the folded convolutions, which is not what the
recipe's rounds do. The heads are not folded and come back as they were
trained. Checked on import: the rebuilt backbone, exported again as
export_shapes.py does, has the package's weights within 1e-6.
"""
import argparse
import json
import os
import sys
import tempfile

import onnx
import torch
from onnx import numpy_helper
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rcnn_package import BackboneGraph, export  # noqa: E402
from shapes_common import RcnnHead, RoiHead, faster_rcnn  # noqa: E402


def initializers(path):
    """A graph's weights in the order its nodes use them (the backbone's are named by the exporter, not by torch)."""
    graph = onnx.load(path).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    ordered = []
    for node in graph.node:
        ordered += [(name, weights[name]) for name in node.input if name in weights]
    return ordered


def load_named(module, path):
    """A head exported from module itself: its initializers carry the module's parameter and buffer names."""
    state = module.state_dict()
    weights = dict(initializers(path))
    strangers = sorted(set(weights) - set(state))
    missing = sorted(name for name in set(state) - set(weights) if not name.endswith("num_batches_tracked"))
    if strangers or missing:
        raise SystemExit(f"{path} does not hold {type(module).__name__}'s weights: not its own {strangers}, missing {missing}")
    state.update(weights)
    module.load_state_dict(state)


def load_folded_trunk(trunk, path):
    """The backbone's convolutions, BatchNorm folded into each (weight, bias), in graph order."""
    pairs = [m for m in trunk.body if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    convs = list(zip(pairs[0::2], pairs[1::2]))
    weights = [value for _, value in initializers(path)]
    if len(weights) != 2 * len(convs):
        raise SystemExit(f"{path} has {len(weights)} weights; the backbone's {len(convs)} folded convolutions need {2 * len(convs)}")
    with torch.no_grad():
        for (conv, norm), weight, bias in zip(convs, weights[0::2], weights[1::2]):
            conv.weight.copy_(weight)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)


def check_backbone(detector, path):
    """Export the rebuilt backbone again (BatchNorm folded anew) and compare its weights with the package's."""
    with tempfile.TemporaryDirectory() as tmp:
        again = os.path.join(tmp, "backbone.onnx")
        export(BackboneGraph(detector.backbone), (torch.randn(1, 3, 64, 96),), again, ["image"], ["feature_0"], None)
        pairs = list(zip(initializers(again), initializers(path)))
    error = max((a - b).abs().max().item() for (_, a), (_, b) in pairs)
    print(f"backbone: max |exported again - package| = {error:.2e} over {len(pairs)} weights")
    if error > 1e-6:
        raise SystemExit(f"{path}: the rebuilt backbone does not export to the package's weights (max error {error})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", required=True, help="export_shapes.py's folder (backbone.onnx, rpn_head.onnx, box_head.onnx, ...)")
    p.add_argument("--out", required=True, help="folder for faster.pth, fast.pth, rcnn.pth")
    args = p.parse_args()
    torch.set_num_threads(1)
    package = lambda name: os.path.join(args.package, name)  # noqa: E731
    with open(package("model.json")) as f:
        k = len(json.load(f)["classes"])  # background first

    model = faster_rcnn(k).eval()
    load_folded_trunk(model.backbone.trunk, package("backbone.onnx"))
    load_named(nn.ModuleDict({"head": model.rpn.head}), package("rpn_head.onnx"))
    load_named(nn.ModuleDict({"box_head": model.roi_heads.box_head, "box_predictor": model.roi_heads.box_predictor}), package("box_head.onnx"))
    fast = RoiHead(k).eval()
    load_named(fast, package("fast_rcnn_head.onnx"))
    rcnn = RcnnHead(k).eval()
    load_named(rcnn, package("rcnn_head.onnx"))

    check_backbone(model, package("backbone.onnx"))

    os.makedirs(args.out, exist_ok=True)
    for name, module in (("faster.pth", model), ("fast.pth", fast), ("rcnn.pth", rcnn)):
        torch.save(module.state_dict(), os.path.join(args.out, name))
        print("wrote", os.path.join(args.out, name))


if __name__ == "__main__":
    main()

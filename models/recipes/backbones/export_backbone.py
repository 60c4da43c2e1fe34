#!/usr/bin/python3
"""The seed's networks as the backbone of all three pipelines: one package
per network, with the RoI head each paper used.

    /usr/bin/python3 models/recipes/backbones/export_backbone.py --arch alexnet|alexnet-paper|zfnet|vgg16|googlenet|resnet50 \\
        --weights DEFAULT|none|FILE.pth [--num-classes K] [--seed S] [--structure-only] --out DIR

    arch           trunk (stride 16)                  RoI pooling   RoI head
    alexnet        torchvision's AlexNet to conv5     RoIPool 6x6   fc6, fc7
    alexnet-paper  the paper's 96-256-384-384-256     RoIPool 6x6   fc6, fc7
                   with LRN (k=2, n=5, alpha=1e-4, beta=0.75) after pool1 and pool2
    zfnet          the seed's ZFNet (7x7/2 conv1,     RoIPool 6x6   fc6, fc7
                   conv2 /2, conv3-5 512-1024-512)
    vgg16          torchvision's VGG16 to conv5_3     RoIPool 7x7   fc6, fc7
    googlenet      Inception v1 to inception4e        RoIPool 14x14 pool4, inception5a-b, average pool
    resnet50       ResNet-50 to layer3 (conv4_x)      RoIPool 14x14 layer4 (conv5_x), average pool

The package (model.json and its graphs):

    backbone.onnx     image [N, 3, H, W] -> feature_0 [N, H/16, W/16, C] (NHWC)
    rpn_head.onnx     feature_0 -> objectness, deltas (3 scales x 3 ratios = 9 anchors per cell, as the Faster R-CNN paper)
    box_head.onnx     RoIPool features [R, C, P, P] -> class logits, class-specific deltas: Faster and Fast R-CNN
    rcnn_head.onnx    a warped 224x224 crop's feature map [N, 14 (13), 14 (13), C] -> logits, deltas: the rest of the
                      classification network (pool5 and fc6-fc7, or the last stage) and the same linear layers

--weights: DEFAULT (torchvision's ImageNet weights for the trunk and fc6-fc7
or the last stage, where torchvision has them and the machine can fetch them:
alexnet, vgg16, googlenet, resnet50), none (seeded random weights, BatchNorm
statistics measured on a seeded image), or FILE.pth (a state_dict of the
classification network, e.g. your own ImageNet training of alexnet-paper).
The detection layers (RPN, class and box outputs) are seeded random either way:
train them before serving real images.

--structure-only writes every graph, and classifier.onnx (the whole ImageNet
network, 1000 classes, auxiliary classifiers dropped), with its weights as
ONNX external data and then drops the weight files: a few KB per graph, enough
for `rcnn-serve models inspect DIR [--classifier]` (layer tables, parameters,
multiply-adds), not for inference. BatchNorm stays a node of its own
(training-mode export), so its scale and shift count as parameters, as in
torchvision's published figures.
"""
import argparse
import io
import os
import sys
from collections import OrderedDict
from types import SimpleNamespace

import onnx
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign, roi_pool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rcnn_package import OPSET, BackboneGraph, BoxHeadGraph, RpnHeadGraph, calibrate_batchnorm, manifest, write_manifest  # noqa: E402

STRIDE = 16
WARP = 224
ARCHS = ["alexnet", "alexnet-paper", "zfnet", "vgg16", "googlenet", "resnet50"]
TORCHVISION_WEIGHTS = {
    "alexnet": torchvision.models.AlexNet_Weights,
    "vgg16": torchvision.models.VGG16_Weights,
    "googlenet": torchvision.models.GoogLeNet_Weights,
    "resnet50": torchvision.models.ResNet50_Weights,
}


class _Lrn(torch.autograd.Function):
    """Local response normalisation that exports as ONNX's LRN node (torch
    exports nn.LocalResponseNorm as pooling arithmetic)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    """The AlexNet paper's b = a / (k + alpha * sum_{n neighbours} a^2)^beta.
    torch and ONNX divide alpha by n, so they are given alpha * n."""

    def __init__(self, n=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.n, self.alpha, self.beta, self.k = n, alpha, beta, k

    def forward(self, x):
        return _Lrn.apply(x, self.n, self.alpha * self.n, self.beta, self.k)


class ConvNet(nn.Module):
    """features -> flatten -> classifier: AlexNet's and ZFNet's shape."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def fc_classifier(inputs, num_classes=1000):
    return nn.Sequential(nn.Dropout(), nn.Linear(inputs, 4096), nn.ReLU(inplace=True), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes))


def alexnet_paper():
    """The seed's table, at 224: conv1 padded by 2 (the paper's 224 input gives
    55x55 only so; Caffe feeds 227 unpadded), LRN after each of the first two
    poolings (the seed's and CaffeNet's order; the paper normalises before
    pooling), conv2 ungrouped (the paper splits it over two GPUs)."""
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), LRN(),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), LRN(),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    return ConvNet(features, fc_classifier(256 * 6 * 6))


def zfnet():
    """The seed's ZFNet: 110x110 after conv1 (7x7/2, padded by 1), 26x26 after
    conv2 (5x5/2, unpadded: the seed's 'p1' would give 27), ceil-mode pooling as
    Caffe (55 and 13 as the paper's figure), conv3-5 of 512, 1024, 512."""
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    features = nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True), pool(), LRN(),
        nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True), pool(), LRN(),
        nn.Conv2d(256, 512, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(512, 1024, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(1024, 512, 3, padding=1), nn.ReLU(inplace=True), pool())
    return ConvNet(features, fc_classifier(512 * 6 * 6))


def classifier_network(arch, weights):
    """The ImageNet classification network, with the weights asked for."""
    tv = TORCHVISION_WEIGHTS.get(arch)
    if weights == "DEFAULT" and tv is None:
        sys.exit(f"--arch {arch} has no published weights in torchvision: use --weights none or FILE.pth")
    w = tv.DEFAULT if weights == "DEFAULT" else None
    if arch == "alexnet":
        net = torchvision.models.alexnet(weights=w)
    elif arch == "vgg16":
        net = torchvision.models.vgg16(weights=w)
    elif arch == "googlenet":
        net = torchvision.models.googlenet(weights=w, aux_logits=False, init_weights=w is None)
    elif arch == "resnet50":
        net = torchvision.models.resnet50(weights=w)
    else:
        net = alexnet_paper() if arch == "alexnet-paper" else zfnet()
    if weights not in ("none", "DEFAULT"):
        state = torch.load(weights, map_location="cpu")
        net.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    return net.eval()


class Trunk(nn.Module):
    """The network up to stride 16, as a torchvision detection backbone."""

    def __init__(self, layers, out_channels):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x):
        return OrderedDict([("0", self.body(x))])


class RoiHead(nn.Module):
    """Pooled RoI features -> the box representation: the classification
    network's layers after the trunk (fc6-fc7, or the last stage)."""

    def __init__(self, layers, representation):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.representation = representation

    def forward(self, x):
        return self.body(x)


class RoiPool(MultiScaleRoIAlign):
    """RoI max pooling at stride 16 (Fast R-CNN's RoIPool) where torchvision's
    FasterRCNN takes a MultiScaleRoIAlign (it checks the type)."""

    def __init__(self, size):
        super().__init__(["0"], size, sampling_ratio=0)
        self.size = size

    def forward(self, features, proposals, image_shapes):
        return roi_pool(features["0"], proposals, (self.size, self.size), 1.0 / STRIDE)


def split(arch, net):
    """(trunk layers, channels, RoI size, R-CNN's pool5 or None, RoI head layers, representation)."""
    tail = [nn.Flatten(1)]
    if arch in ("alexnet", "alexnet-paper", "zfnet"):
        f = list(net.features)
        fc = list(net.classifier)[:-1]  # dropout, fc6, relu, dropout, fc7, relu
        channels = {"alexnet": 256, "alexnet-paper": 256, "zfnet": 512}[arch]
        return f[:-1], channels, 6, f[-1], tail + fc, 4096
    if arch == "vgg16":
        f = list(net.features)
        return f[:-1], 512, 7, f[-1], tail + list(net.classifier)[:-1], 4096
    if arch == "googlenet":
        n = net
        trunk = [n.conv1, n.maxpool1, n.conv2, n.conv3, n.maxpool2, n.inception3a, n.inception3b, n.maxpool3,
                 n.inception4a, n.inception4b, n.inception4c, n.inception4d, n.inception4e]
        return trunk, 832, 14, None, [n.maxpool4, n.inception5a, n.inception5b, n.avgpool] + tail, 1024
    n = net
    return [n.conv1, n.bn1, n.relu, n.maxpool, n.layer1, n.layer2, n.layer3], 1024, 14, None, [n.layer4, n.avgpool] + tail, 2048


class PaperRpnHead(nn.Module):
    """The Faster R-CNN paper's RPN: a 3x3 convolution to a `mid`-d feature
    (256-d for ZF, 512-d for VGG), then 1x1 objectness and box deltas; the
    interface of torchvision's RPNHead (which keeps the input's width)."""

    def __init__(self, channels, mid, anchors):
        super().__init__()
        self.conv = nn.Conv2d(channels, mid, 3, padding=1)
        self.cls_logits = nn.Conv2d(mid, anchors, 1)
        self.bbox_pred = nn.Conv2d(mid, 4 * anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, features):
        hidden = [F.relu(self.conv(f)) for f in features]
        return [self.cls_logits(h) for h in hidden], [self.bbox_pred(h) for h in hidden]


def faster_rcnn(arch, net, num_classes, min_size, max_size):
    trunk, channels, roi, _, head, rep = split(arch, net)
    anchors = AnchorGenerator(sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    mid = 256 if arch in ("alexnet", "alexnet-paper", "zfnet") else 512
    return FasterRCNN(Trunk(trunk, channels), min_size=min_size, max_size=max_size, rpn_anchor_generator=anchors,
                      rpn_head=PaperRpnHead(channels, mid, 9),
                      box_roi_pool=RoiPool(roi), box_head=RoiHead(head, rep), box_predictor=FastRCNNPredictor(rep, num_classes),
                      rpn_pre_nms_top_n_test=6000, rpn_post_nms_top_n_test=300).eval()


class RcnnHeadGraph(nn.Module):
    """A warped crop's feature map (NHWC) -> pool5 where the network has one -> the RoI head -> class logits, deltas."""

    def __init__(self, pool5, roi_heads):
        super().__init__()
        self.pool5 = pool5 if pool5 is not None else nn.Identity()
        self.head = roi_heads.box_head
        self.predictor = roi_heads.box_predictor

    def forward(self, features):
        return self.predictor(self.head(self.pool5(features.permute(0, 3, 1, 2))))


def build_detector(arch, weights="none", num_classes=21, seed=0, min_size=600, max_size=1000, logit_scale=1.0):
    """(the classification network, the torchvision FasterRCNN around its trunk), in eval mode:
    the same weights for the same arguments, so reference scripts rebuild what was exported."""
    torch.manual_seed(seed)
    net = classifier_network(arch, weights)
    model = faster_rcnn(arch, net, num_classes, min_size, max_size)
    if weights == "none":
        calibrate_batchnorm(model, torch.Generator().manual_seed(seed))
    if logit_scale != 1.0:
        # Untrained heads give near-uniform scores; scaling the classification layers spreads them.
        with torch.no_grad():
            for layer in (model.rpn.head.cls_logits, model.roi_heads.box_predictor.cls_score):
                layer.weight.mul_(logit_scale)
                layer.bias.mul_(logit_scale)
    return net, model.eval()


def export(module, args, path, input_names, output_names, dynamic_axes, structure_only):
    """torch.onnx.export; with structure_only the weights go to external data, which is then removed."""
    module.eval()
    buf = io.BytesIO()
    # Training mode keeps BatchNorm a node of its own (eval mode folds it into the convolution); the
    # structure export is never run, so its BatchNorm mode does not matter, but its parameters count.
    mode = torch.onnx.TrainingMode.PRESERVE if structure_only else torch.onnx.TrainingMode.EVAL
    if structure_only:
        module.train()
        for m in module.modules():  # dropout off: the graph then has no random nodes
            if isinstance(m, nn.Dropout):
                m.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                          opset_version=OPSET, do_constant_folding=not structure_only, training=mode)
    module.eval()
    model = onnx.load_from_string(buf.getvalue())
    if structure_only:
        data = os.path.basename(path) + ".data"
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data, size_threshold=0)
        os.remove(os.path.join(os.path.dirname(path), data))
    else:
        onnx.save_model(model, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--weights", default="none", help="DEFAULT | none | FILE.pth (default: none)")
    p.add_argument("--num-classes", type=int, default=21, help="detection classes including background (default 21: PASCAL VOC's 20 + 1)")
    p.add_argument("--classes", default=None, help="comma-separated class names, background excluded (default: class_1..)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--min-size", type=int, default=600, help="shorter side of the network input (the papers': 600)")
    p.add_argument("--max-size", type=int, default=1000, help="longer side at most (the papers': 1000)")
    p.add_argument("--rcnn-proposals", type=int, default=100, help="R-CNN's default region count (one CNN run per region)")
    p.add_argument("--logit-scale", type=float, default=1.0, help="multiply the RPN and box classifier logits (untrained packages)")
    p.add_argument("--structure-only", action="store_true", help="graphs without weights, plus classifier.onnx: layer tables only")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    net, model = build_detector(args.arch, args.weights, args.num_classes, args.seed, args.min_size, args.max_size, args.logit_scale)
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)  # noqa: E731
    s = args.structure_only
    _, channels, roi, pool5, _, _ = split(args.arch, net)

    image = torch.randn(1, 3, 224, 288)
    export(BackboneGraph(model.backbone), (image,), out("backbone.onnx"), ["image"], ["feature_0"],
           {"image": {0: "batch", 2: "height", 3: "width"}, "feature_0": {0: "batch", 1: "h", 2: "w"}}, s)
    with torch.no_grad():
        feature = model.backbone(image)["0"].permute(0, 2, 3, 1)
    export(RpnHeadGraph(model.rpn.head), (feature,), out("rpn_head.onnx"), ["feature_0"], ["objectness_0", "deltas_0"],
           {"feature_0": {1: "h", 2: "w"}, "objectness_0": {2: "h", 3: "w"}, "deltas_0": {2: "h", 3: "w"}}, s)
    pooled = torch.randn(2, channels, roi, roi)
    export(BoxHeadGraph(model.roi_heads), (pooled,), out("box_head.onnx"), ["pooled"], ["class_logits", "box_deltas"],
           {"pooled": {0: "rois"}, "class_logits": {0: "rois"}, "box_deltas": {0: "rois"}}, s)
    with torch.no_grad():
        crop_map = model.backbone(torch.randn(2, 3, WARP, WARP))["0"].permute(0, 2, 3, 1)
    export(RcnnHeadGraph(pool5, model.roi_heads), (crop_map,), out("rcnn_head.onnx"), ["features"], ["class_logits", "box_deltas"],
           {"features": {0: "crops"}, "class_logits": {0: "crops"}, "box_deltas": {0: "crops"}}, s)
    if s:
        export(net, (torch.randn(1, 3, 224, 224),), out("classifier.onnx"), ["image"], ["logits"], {"image": {0: "batch"}}, True)

    m = manifest(model, args.arch, SimpleNamespace(out=args.out, weights=args.weights if args.weights in ("none", "DEFAULT") else os.path.basename(args.weights),
                                                   seed=args.seed, logit_scale=args.logit_scale, classes=args.classes), ["0"])
    m["description"] = (f"{args.arch} (stride 16, {channels} channels, RoIPool {roi}x{roi}) as the backbone of R-CNN, Fast R-CNN and "
                        f"Faster R-CNN; ImageNet part {'torchvision DEFAULT' if args.weights == 'DEFAULT' else args.weights}, "
                        f"detection layers seeded random (seed {args.seed})" + ("; structure only, no weights" if s else ""))
    m["source"] = OrderedDict([("exporter", "models/recipes/backbones/export_backbone.py"), ("arch", args.arch), ("weights", m["source"]["weights"]),
                               ("seed", args.seed), ("logitScale", args.logit_scale), ("structureOnly", s), ("torch", torch.__version__), ("torchvision", torchvision.__version__)])
    faster = m["pipelines"]["faster-rcnn"]
    faster["roiOp"] = OrderedDict([("type", "roi-pool"), ("features", ["0"]), ("outputSize", [roi, roi])])
    head = OrderedDict([("file", "box_head.onnx"), ("input", "pooled"), ("classLogits", "class_logits"), ("boxDeltas", "box_deltas")])
    proposals = OrderedDict([("method", "selective-search"), ("mode", "fast"), ("maxProposals", 2000), ("minSize", 0), ("seed", 0)])
    m["pipelines"] = OrderedDict([
        ("rcnn", OrderedDict([("proposals", OrderedDict(proposals, maxProposals=args.rcnn_proposals)),
                              ("warp", OrderedDict([("size", [WARP, WARP]), ("context", 16), ("samplingRatio", 2)])),
                              ("feature", "0"), ("batchSize", 16),
                              ("head", OrderedDict(head, file="rcnn_head.onnx", input="features")),
                              ("boxCoder", faster["boxCoder"]), ("postprocess", faster["postprocess"])])),
        # Fast R-CNN: the same RoIPool and head graph as Faster R-CNN's, on selective search's regions.
        ("fast-rcnn", OrderedDict([("proposals", proposals), ("roiPool", OrderedDict([("feature", "0"), ("outputSize", [roi, roi])])),
                                   ("head", head), ("boxCoder", faster["boxCoder"]), ("postprocess", faster["postprocess"])])),
        ("faster-rcnn", faster),
    ])
    if s:
        m["classifier"] = OrderedDict([("file", "classifier.onnx"), ("input", "image"), ("inputSize", [3, 224, 224])])
    write_manifest(args.out, m)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Compare two packages that export_shapes.py wrote, graph by graph: the
file's bytes, and where those differ the weights (largest absolute
difference, and that over the largest weight of the graph).

    /usr/bin/python3 models/recipes/lib/compare_packages.py models/shapes-vgg data/rerun-heads/shapes-vgg [--json]

Prints one line per ONNX graph of the first package (`--json`: one object,
graph -> {"identical", "max_abs_diff", "max_rel_diff"}); exits 1 when a graph
is missing from the second or holds other weights (names or shapes).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def weights(path):
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def compare(a_path, b_path):
    with open(a_path, "rb") as a, open(b_path, "rb") as b:
        if a.read() == b.read():
            return {"identical": True, "max_abs_diff": 0.0, "max_rel_diff": 0.0}
    a, b = weights(a_path), weights(b_path)
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit(f"{b_path} does not hold the weights of {a_path} (names or shapes differ)")
    diff = max(float(np.abs(a[k].astype(np.float64) - b[k]).max(initial=0.0)) for k in a)
    scale = max(float(np.abs(v).max(initial=0.0)) for v in a.values())
    return {"identical": False, "max_abs_diff": diff, "max_rel_diff": diff / scale if scale else diff}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    report = {}
    for name in sorted(f for f in os.listdir(args.first) if f.endswith(".onnx")):
        other = os.path.join(args.second, name)
        if not os.path.exists(other):
            raise SystemExit(f"{args.second} has no {name}")
        report[name] = compare(os.path.join(args.first, name), other)
    if args.json:
        print(json.dumps(report))
        return
    for name, r in report.items():
        verdict = "identical bytes" if r["identical"] else f"max |diff| {r['max_abs_diff']:.3g} ({r['max_rel_diff']:.3g} of the largest weight)"
        print(f"{name:22s} {verdict}")


if __name__ == "__main__":
    sys.exit(main())

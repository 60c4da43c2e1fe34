#!/usr/bin/env bash
# The device machine's side of `npm run test:gpu` (docs/gpu.md). Each call
# carries .gpu/parts.json and one part of the bundle that `npm run gpu:bundle`
# made; parts from earlier calls on the same (warm) machine are still there.
# Until every part has arrived it says which are missing and stops; then it
# checks the bundle's sha256, unpacks it into the repository (node_modules/,
# dist/, .gpu/node, .gpu/device-check.mjs) and runs the device script with the
# CUDA libraries of the machine's Python packages on the library path.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/rcnn-serve-gpu}
mkdir -p "$out"

parts=$(sed -n 's/.*"parts": *\([0-9]*\).*/\1/p' .gpu/parts.json)
sha=$(sed -n 's/.*"sha256": *"\([0-9a-f]*\)".*/\1/p' .gpu/parts.json)
missing=()
for i in $(seq 1 "$parts"); do [ -f ".gpu/part-$i" ] || missing+=("$i"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bundle: parts ${missing[*]} of $parts still to come; nothing run yet"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  exit 0
fi

if [ ! -x .gpu/node ]; then
  for i in $(seq 1 "$parts"); do cat ".gpu/part-$i"; done > .gpu/bundle.tar.xz
  echo "$sha  .gpu/bundle.tar.xz" | sha256sum -c --quiet
  rm -rf node_modules dist
  tar -xJf .gpu/bundle.tar.xz -C .
  rm .gpu/bundle.tar.xz
fi

# The CUDA 13 runtime, cuBLAS and cuDNN that PyTorch's wheels bring (the machine's CUDA toolkit as well, if any).
libs=$(python3 -c 'import glob, os, site; print(":".join(sorted({os.path.dirname(p) for d in site.getsitepackages() for p in glob.glob(os.path.join(d, "nvidia", "**", "lib*.so*"), recursive=True)})))' 2>/dev/null || true)
export LD_LIBRARY_PATH="${libs}${libs:+:}/usr/local/nvidia/lib64:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# What the CUDA provider still cannot find, if anything: the first thing to read when it falls back to the CPU.
provider=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
if [ -f "$provider" ]; then ldd "$provider" | grep 'not found' | sed 's/^/provider needs: /' || true; fi
# fp32 means fp32 on both sides: no TF32 rounding in cuBLAS and cuDNN (for ONNX Runtime and for PyTorch),
# so the parity section holds the CPU tests' tolerances. fp16 runs on the tensor cores either way.
export NVIDIA_TF32_OVERRIDE=${NVIDIA_TF32_OVERRIDE:-0}
.gpu/node .gpu/device-check.mjs --out "$out" "$@" 2>&1 | tee "$out/device-check.log"

#!/usr/bin/env bash
# The GPU measurements, in one call on a GPU machine (PyTorch with CUDA, onnx, onnxruntime, numpy;
# no npm needed). Carry the Fashion-MNIST idx files in .cache/fashion-mnist/ (git-ignored):
#   mkdir -p .cache/fashion-mnist && cp /usr/share/datasets/fashion-mnist/* .cache/fashion-mnist/
# Writes bench/results/presets-cuda.json and trainer-cuda-gpu-resnet18-128.json (in $OUT too, when set).
set -euo pipefail
cd "$(dirname "$0")/.."
export FASHION_MNIST_DIR="${FASHION_MNIST_DIR:-$PWD/.cache/fashion-mnist}"
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("device", torch.cuda.get_device_name(0), "torch", torch.__version__)'
python3 bench/presets_bench.py --device cuda --steps 20 | tail -n 1 > bench/results/presets-cuda.json
python3 bench/trainer_bench.py --minutes "${MINUTES:-10}" --preset gpu-resnet18-128 --out bench/results/trainer-cuda-gpu-resnet18-128.json
if [ -n "${OUT:-}" ]; then cp bench/results/presets-cuda.json bench/results/trainer-cuda-gpu-resnet18-128.json "$OUT"/; fi

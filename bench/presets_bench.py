"""Each trainer preset's SimCLR step: images/s, step time, peak memory, FLOPs per image; on CUDA
also bf16/channels-last and MFU (achieved FLOP/s over the GPU's dense bf16 peak).

Every preset is measured in a fresh subprocess (a clean peak-memory reading), on synthetic images
at the preset's input size (the step's cost does not depend on the pixels).

usage: python bench/presets_bench.py [--device cpu|cuda] [--steps N] [--quick] --out FILE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gpu-trainer"))

# Dense bf16 tensor-core peaks (no sparsity), from NVIDIA's data sheets, for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10G": 70.0, "L40S": 362.0}
CPU_BATCH = {"cpu-small": 64, "gpu-resnet18-128": 16, "gpu-resnet50-224": 8, "gpu-vits16-224": 8}


def measure(preset: str, device_name: str, steps: int) -> dict:
    import torch
    from pipeline_trainer.augment import normalize, to_unit_float
    from pipeline_trainer.config import load_config
    from pipeline_trainer.losses import nt_xent
    from pipeline_trainer.model import ProjectionHead, build_encoder, encoder_spec
    from pipeline_trainer.optim import make_optimizer
    from pipeline_trainer.runtime import SimCLRNet
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device_name)
    cfg = load_config(None, [], env={}, preset=preset)
    size = cfg.input_size
    batch = cfg.batch_size if device.type == "cuda" else CPU_BATCH[preset]
    torch.manual_seed(0)
    encoder = build_encoder(encoder_spec(cfg.arch, 3, cfg.embedding_dim, (size, size)))
    net = SimCLRNet(encoder, ProjectionHead(cfg.embedding_dim, 2 * cfg.embedding_dim, cfg.projection_dim)).to(device)
    cuda = device.type == "cuda"
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg.optimizer, list(net.parameters()), cfg.lr, cfg.weight_decay)
    images = torch.randint(0, 256, (2 * batch, size, size, 3), dtype=torch.uint8, device=device)

    def step():
        x = normalize(to_unit_float(images), [0.5] * 3, [0.25] * 3)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            z = net(x)
        z1, z2 = z.float().chunk(2)
        loss = nt_xent(z1, z2, cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops_per_image = counter.get_total_flops() / batch
    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    ips = batch * steps / seconds
    out = {
        "preset": preset,
        "arch": cfg.arch,
        "inputSize": size,
        "batch": batch,
        "parametersM": round(sum(p.numel() for p in net.encoder.parameters()) / 1e6, 2),
        "steps": steps,
        "stepMs": round(1000 * seconds / steps, 1),
        "imagesPerSecond": round(ips, 1),
        "gflopsPerImage": round(flops_per_image / 1e9, 2),
        "achievedTflops": round(ips * flops_per_image / 1e12, 3),
    }
    if cuda:
        name = torch.cuda.get_device_name(0)
        out["device"] = name
        out["peakMemoryGiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        out["mfu"] = round(out["achievedTflops"] / peak, 3) if peak else None
    else:
        out["device"] = f"cpu ({os.cpu_count()} cores, {platform.machine()})"
        out["peakRssMiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=False)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.steps)))
        return
    from pipeline_trainer.config import PRESETS

    presets = ["cpu-small"] if args.quick else list(PRESETS)
    results = []
    for preset in presets:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", preset, "--device", args.device, "--steps", str(1 if args.quick else args.steps)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{preset} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"  {preset}: {r['imagesPerSecond']} images/s, step {r['stepMs']} ms at batch {r['batch']}, {r['gflopsPerImage']} GFLOP/image", flush=True)
    doc = {"device": args.device, "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "presets": results}
    print(json.dumps(doc))


if __name__ == "__main__":
    main()

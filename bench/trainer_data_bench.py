"""The trainer's data path at a corpus size: load the derived images from S3, SimCLR-pretrain for a
fixed time, embed every image once (as pseudo-labelling does), and report peak memory and speed.

    python bench/trainer_data_bench.py --endpoint http://127.0.0.1:PORT --mode stream|memory --seconds 60 --cache DIR

stream: the trainer's path (rows on local disk, each step read ahead by a background thread);
memory: the same rows made resident first (the in-memory path the trainer had before), for reference.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu-trainer"))

from pipeline_trainer.config import TrainConfig  # noqa: E402
from pipeline_trainer.data import LoadSpec, load_dataset  # noqa: E402
from pipeline_trainer.evaluate import embed_images  # noqa: E402
from pipeline_trainer.manifest import InputSpec  # noqa: E402
from pipeline_trainer.model import FitInput, ProjectionHead, build_encoder, encoder_spec  # noqa: E402
from pipeline_trainer.runtime import History, Runtime, SimCLRNet  # noqa: E402
from pipeline_trainer.s3io import S3Location, make_client  # noqa: E402
from pipeline_trainer.train import pretrain  # noqa: E402


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--mode", choices=["stream", "memory"], required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    client = make_client(S3Location(args.endpoint, "artifacts", "images", "us-east-1"))
    rss_start = peak_rss_mib()
    t0 = time.monotonic()
    data = load_dataset(client, "artifacts", args.cache, workers=16, spec=LoadSpec(32, 32, 3), log=lambda *a, **k: print(*a, file=sys.stderr))
    load_seconds = time.monotonic() - t0
    rss_loaded = peak_rss_mib()
    views = data.views if args.mode == "stream" else torch.from_numpy(data.views[:]).to(device)
    cfg = TrainConfig(cache_dir=args.cache, log_every=50)  # the trainer's defaults: cpu-small's model and batch
    small = {"width": cfg.width, "blocks_per_stage": tuple(cfg.blocks_per_stage), "pooled_grid": cfg.pooled_grid}
    encoder = FitInput(build_encoder(encoder_spec("small-resnet", 3, cfg.embedding_dim, (32, 32), small)), (32, 32)).to(device)
    net = SimCLRNet(encoder, ProjectionHead(cfg.embedding_dim, 2 * cfg.embedding_dim, cfg.projection_dim)).to(device)

    class Recorder:
        def update(self, **_):
            pass

    stats = pretrain(cfg, Runtime(device=device), net, views, InputSpec(), args.seconds, History(), f"bench-{args.mode}", Recorder(), lambda *a, **k: None)
    t1 = time.monotonic()
    canonical = data.canonical if args.mode == "stream" else views[:, 0].cpu().numpy()
    emb = embed_images(encoder, canonical, list(InputSpec().mean), list(InputSpec().std), device)
    embed_seconds = time.monotonic() - t1
    print(
        json.dumps(
            {
                "mode": args.mode,
                "images": len(data),
                "viewsPerImage": int(data.views.shape[1]),
                "corpusMiB": round(data.views.nbytes / 2**20, 1),
                "loadSeconds": round(load_seconds, 1),
                "pretrainSeconds": args.seconds,
                "steps": stats["steps"],
                "imagesPerSecond": stats["images_per_second"],
                "dataWaitShare": stats.get("data_wait_share", 0.0),
                "embedAllSeconds": round(embed_seconds, 1),
                "embeddings": list(emb.shape),
                "peakRssMiB": {"atStart": rss_start, "afterLoad": rss_loaded, "atEnd": peak_rss_mib()},
            }
        )
    )


if __name__ == "__main__":
    main()

"""`run`: one training run, top to bottom.

    python -m pipeline_trainer run --job-id manual-1 --max-minutes 8          # CPU or one GPU
    torchrun --nproc_per_node 4 -m pipeline_trainer run --job-id multi-1      # several GPUs, one node

Phases: data -> model (warm start from the serving encoder) -> SimCLR pretraining with device-side
augmentations on top of the Lambda views -> pseudo-labelling from the human labels (optionally a
FixMatch-style fine-tune) -> held-out evaluation of the new and the serving encoder -> gate ->
ONNX export with a parity check -> publish (always the version and its gate decision; when it
passes, also its pseudo-labels and the candidate pointer that starts the rollout).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import keys, lease
from .augment import normalize, simclr_view, to_unit_float
from .config import TrainConfig
from .data import Dataset, ResolutionError, holdout_split, load_dataset
from .evaluate import embed_images, evaluate_heldout, knn_accuracy, view_stats
from .export import ExportParityError, check_parity, export_onnx
from .finetune import fixmatch_finetune, pseudo_labels
from .gate import GatePolicy, decide
from .losses import nt_xent
from .manifest import WEIGHTS_FILE, GateDecision, InputSpec, build_manifest, git_sha, utc_now
from .model import FitInput, ProjectionHead, build_encoder, encoder_from_bytes, encoder_spec, encoder_to_bytes
from .optim import make_optimizer, set_lr, warmup_cosine
from .publish import RunRecorder, next_version, publish_pseudo_labels, publish_version, read_serving, set_candidate
from .report import curves_png
from .runtime import (
    History,
    Runtime,
    SimCLRNet,
    TrainingError,
    any_rank,
    end_distributed,
    mean_over_ranks,
    rank0_value,
    revert_sync_batchnorm,
    setup_runtime,
    unwrap,
)
from .s3io import get_bytes, get_json, put_bytes, put_json
from .store import ViewColumn, Views, batches_for


def run(cfg: TrainConfig, client, bucket: str, job_id: str, work=None) -> dict:
    """A job under the training lease with its run record: a training run (`work` None), or another job
    body (`work(cfg, client, bucket, job_id, rt, started, deadline, recorder, log) -> result`), e.g. an import."""
    rt = setup_runtime(cfg)
    started = time.monotonic()
    deadline = started + cfg.max_minutes * 60
    log = print if rt.main else (lambda *a, **k: None)
    log(f"[train] job {job_id} git {git_sha()} device {rt.device} world {rt.world}", flush=True)
    log(f"[train] config {json.dumps(cfg.to_dict(), sort_keys=True)}", flush=True)
    torch.manual_seed(cfg.seed + rt.rank)
    decision = [lease.acquire(client, bucket, job_id, cfg.max_minutes * 60 + 15 * 60) if rt.main else None]
    if rt.world > 1:
        dist.broadcast_object_list(decision, src=0)  # every rank starts, or none does
    held, holder = decision[0]
    if not held:
        log(f"[train] training run {holder} holds the lease: not starting {job_id}", flush=True)
        if rt.world > 1:
            dist.destroy_process_group()
        return {"state": "skipped", "holder": holder}
    recorder = RunRecorder(client, bucket, job_id, enabled=rt.main)
    recorder.update(state="running", phase="data", maxMinutes=cfg.max_minutes)
    try:
        result = (work or _run)(cfg, client, bucket, job_id, rt, started, deadline, recorder, log)
        recorder.update(**result)
        return result
    except Exception as err:
        recorder.update(state="failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if rt.main:
            lease.release(client, bucket, job_id)
        if rt.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class Serving:
    """The serving version a run starts from and is compared with."""

    version: str
    input_spec: InputSpec
    model: torch.nn.Module | None  # its weights, when published (for the warm start and the comparison)
    manifest: dict | None = None
    onnx: bytes | None = None  # its ONNX, when it has no weights (an imported encoder is compared through onnxruntime)


@dataclass
class Split:
    data: Dataset
    train_rows: list[int]  # labelled images the run may learn from
    holdout_rows: list[int]  # labelled images kept for the gate, never trained on


def _run(cfg, client, bucket, job_id, rt: Runtime, started, deadline, recorder, log) -> dict:
    serving = load_serving(client, bucket, rt)
    arch, spec = target(cfg, serving)
    if serving.model is None:
        spec = serving.input_spec  # an adapter head works at the frozen encoder's own input
    split = load_data(cfg, client, bucket, spec, rt, log)
    if serving.model is None:
        # An imported ONNX-only encoder: no weights to continue from; train an adapter head on it instead.
        from .adapter import run_adapter

        return run_adapter(cfg, rt, client, bucket, job_id, serving, split, started, deadline, recorder, log)
    net, train_net, start = build_model(cfg, rt, serving, arch, spec, log)
    if start.startswith("warm start") and (serving.manifest or {}).get("training", {}).get("kind") != "random-init":
        cfg = dataclasses.replace(cfg, lr=cfg.lr * cfg.warm_start_lr_scale, finetune_lr=cfg.finetune_lr * cfg.warm_start_lr_scale)
        log(f"[train] refining a trained encoder: learning rates x{cfg.warm_start_lr_scale} (lr {cfg.lr:.2e}, fine-tune {cfg.finetune_lr:.2e})", flush=True)
    views = split.data.views  # uint8 [N, V, H, W, C] on local disk: each step's rows are read ahead of it
    history = History()

    budget = started + (deadline - started) * cfg.pretrain_share - time.monotonic()
    on_eval = heldout_knn_curve(cfg, rt, net.encoder, split.data, spec, split.train_rows, split.holdout_rows)
    stats = pretrain(cfg, rt, train_net, views, spec, budget, history, job_id, recorder, log, on_eval=on_eval)
    end_distributed(rt)  # from here on rank 0 works alone
    if not rt.main:
        return {}
    encoder = revert_sync_batchnorm(net).encoder

    recorder.update(phase="pseudo-labelling")
    pseudo = label_unlabelled(cfg, rt, encoder, views, spec, split, started, deadline, history, log)
    recorder.update(phase="evaluation")
    new_metrics, gate = evaluate_and_gate(cfg, rt, client, bucket, encoder, serving, split, pseudo, log)
    encoder = encoder.inner  # the model proper, taking exactly the manifest's input size
    onnx_bytes, gate = export_with_parity(encoder, spec, new_metrics, gate)
    metrics = {
        **new_metrics,
        "trainSteps": stats["steps"],
        "imagesPerSecond": stats["images_per_second"],
        "wallSeconds": round(time.monotonic() - started, 1),
        "heldOutLabels": len(split.holdout_rows),
        "trainingLabels": len(split.train_rows),
    }
    version = publish(cfg, rt, client, bucket, job_id, encoder, onnx_bytes, spec, serving, split, metrics, gate, pseudo, history, start)
    state = "published" if gate.passed else "rejected"
    log(f"[train] {version} {state}: {'; '.join(gate.reasons)} ({metrics['wallSeconds']:.0f} s)", flush=True)
    return {"state": state, "version": version, "phase": "done", "gate": gate.to_dict(), "metrics": _finite(_round(new_metrics))}


def load_serving(client, bucket: str, rt: Runtime) -> Serving:
    pointer = read_serving(client, bucket)
    if pointer is None:
        raise TrainingError("no serving model: publish one first (python -m pipeline_trainer init)")
    version = pointer["version"]
    manifest = get_json(client, bucket, keys.manifest(version))
    weights = get_bytes(client, bucket, keys.model_file(version, WEIGHTS_FILE))
    model = encoder_from_bytes(weights).to(rt.device) if weights else None
    onnx = None if weights else get_bytes(client, bucket, keys.model_file(version, manifest["encoder"]["file"]))
    return Serving(version=version, input_spec=InputSpec.from_dict(manifest["input"]), model=model, manifest=manifest, onnx=onnx)


def target(cfg: TrainConfig, serving: Serving) -> tuple[str, InputSpec]:
    """The new version's architecture and input spec: the configured ones, else the serving encoder's
    (so a run continues training an imported pretrained encoder at its own size and normalisation)."""
    arch = cfg.arch or (serving.model.spec.arch if serving.model is not None else "small-resnet")
    if cfg.input_size:
        height = width = cfg.input_size
    else:
        height, width = serving.input_spec.height, serving.input_spec.width
    if arch == "small-resnet" and max(height, width) > 64:
        raise TrainingError(f"small-resnet is for inputs of at most 64 pixels, and this run's input is {height}x{width}: set arch (or a preset)")
    return arch, dataclasses.replace(serving.input_spec, height=height, width=width)


def load_data(cfg: TrainConfig, client, bucket: str, spec: InputSpec, rt: Runtime, log) -> Split:
    try:
        data = load_dataset(client, bucket, cfg.cache_dir, cfg.read_workers, spec, log, cache_max_bytes=cfg.cache_max_bytes)
    except ResolutionError as err:
        raise TrainingError(str(err)) from err
    if len(data) < 2 * rt.world:
        raise TrainingError(f"only {len(data)} images: too few to train on")
    train_rows, holdout_rows = holdout_split(data.label_of, cfg.holdout_fraction, cfg.seed)
    log(f"[train] labels: {len(train_rows)} for training, {len(holdout_rows)} held out for evaluation", flush=True)
    return Split(data, train_rows, holdout_rows)


def build_model(cfg: TrainConfig, rt: Runtime, serving: Serving, arch: str, spec: InputSpec, log) -> tuple[SimCLRNet, torch.nn.Module, str]:
    """The encoder with a projection head, and the module that trains it (the same, or its DDP wrapper
    with synchronised batch norm on CUDA). The encoder is warm-started from the serving one when it
    has the same architecture and input size; a preset with another architecture or size starts
    fresh (and is gated and rolled out like any version)."""
    size = (spec.height, spec.width)
    same = serving.model is not None and serving.model.spec.arch == arch and (serving.input_spec.height, serving.input_spec.width) == size
    if cfg.warm_start and same:
        encoder = copy.deepcopy(serving.model)
        start = f"warm start from {serving.version}" + (" (imported)" if (serving.manifest or {}).get("training", {}).get("kind") == "import" else "")
        log(f"[train] {start} ({arch} at {size[0]}x{size[1]})", flush=True)
    else:
        small = {"width": cfg.width, "blocks_per_stage": tuple(cfg.blocks_per_stage), "pooled_grid": cfg.pooled_grid}
        encoder = build_encoder(encoder_spec(arch, spec.channels, cfg.embedding_dim, size, small)).to(rt.device)
        start = f"fresh {arch}"
        log(f"[train] new {arch} encoder at {size[0]}x{size[1]} ({sum(p.numel() for p in encoder.parameters()) / 1e6:.1f} M parameters)", flush=True)
    encoder = FitInput(encoder, size)
    dim = encoder.spec.embedding_dim
    net = SimCLRNet(encoder, ProjectionHead(dim, 2 * dim, cfg.projection_dim)).to(rt.device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if rt.world == 1:
        return net, net, start
    cuda = rt.device.type == "cuda"
    wrapped = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) if cuda else net
    return net, torch.nn.parallel.DistributedDataParallel(wrapped, device_ids=[rt.device.index] if cuda else None), start


def label_unlabelled(cfg: TrainConfig, rt: Runtime, encoder, views, spec: InputSpec, split: Split, started, deadline, history: History, log) -> dict:
    """Pseudo-labels for the unlabelled images, after a FixMatch-style fine-tune when there is time and data for one."""
    data = split.data
    train_set = set(split.train_rows)
    labelled = {row: c for row, c in data.label_of.items() if row in train_set}
    unlabelled = np.array([r for r in range(len(data)) if r not in data.label_of], dtype=np.int64)
    num_classes = len(data.class_names)
    if cfg.finetune and len(labelled) >= 2 and num_classes >= 2 and len(unlabelled) > 0:
        reserve = 0.1 * (deadline - started)  # evaluation, export and publishing
        budget = min((deadline - started) * cfg.finetune_share, deadline - time.monotonic() - reserve)
        fixmatch_finetune(cfg, rt, encoder, views, spec, labelled, unlabelled, num_classes, budget, history, log)
    return pseudo_labels(cfg, rt, encoder, data, spec, split.train_rows, split.holdout_rows, unlabelled, num_classes)


def evaluate_and_gate(
    cfg: TrainConfig, rt: Runtime, client, bucket: str, encoder, serving: Serving, split: Split, pseudo: dict, log
) -> tuple[dict, GateDecision]:
    """The new and the serving encoder on the same held-out images (and label-free statistics), and the gate's decision."""
    data = split.data
    new_metrics, new_correct, serving_metrics, serving_correct = compare_with_serving(
        cfg, rt, client, bucket, encoder, serving.input_spec, serving, split.data, split.train_rows, split.holdout_rows
    )
    agreement = pseudo_label_agreement(client, bucket, serving.version, data, pseudo["accepted"])
    if agreement is not None:
        new_metrics["pseudoLabelAgreement"] = agreement
    new_metrics.update(pseudo["metrics"])
    policy = GatePolicy(
        confidence=cfg.gate_confidence,
        min_heldout=cfg.gate_min_heldout,
        seed=cfg.seed,
        no_lower_estimate=(serving.manifest or {}).get("training", {}).get("kind") == "import",
    )
    gate = logged_decision(log, "new", serving.version, (new_metrics, new_correct), (serving_metrics, serving_correct), policy)
    new_metrics["serving"] = {"version": serving.version, **(serving_metrics or {})}
    return new_metrics, gate


def logged_decision(log, what: str, serving_version: str, new: tuple, serving: tuple, policy: GatePolicy) -> GateDecision:
    """The gate's decision on (metrics, per-image correctness) of the candidate and the serving encoder, logged."""
    (new_metrics, new_correct), (serving_metrics, serving_correct) = new, serving
    log(f"[eval] {what} {json.dumps(_round(new_metrics))}", flush=True)
    if serving_metrics:
        log(f"[eval] serving {serving_version} {json.dumps(_round(serving_metrics))}", flush=True)
    gate = decide(
        {**new_metrics, "correct": new_correct},
        {**serving_metrics, "correct": serving_correct} if serving_metrics is not None else None,
        policy,
    )
    log(f"[gate] {gate.rule}: {'passed' if gate.passed else 'rejected'}", flush=True)
    return gate


def compare_with_serving(cfg, rt, client, bucket: str, candidate, spec: InputSpec, serving: Serving, data: Dataset, train_rows, holdout_rows):
    """The candidate (its inputs decoded at `spec`, as `data` is) and the serving encoder (at its own input
    size and resize rule) on the same held-out images, with the label-free statistics on the views:
    (candidate metrics, its per-image correctness, serving metrics or None, its correctness)."""
    ty = [data.label_of[r] for r in train_rows]
    hy = [data.label_of[r] for r in holdout_rows]
    rest = (rt.device, train_rows, ty, holdout_rows, hy, len(data.class_names), cfg.knn_k)
    new_metrics, new_correct = evaluate_heldout(candidate, data.canonical, list(spec.mean), list(spec.std), *rest)
    new_metrics.update(view_stats(candidate, data.views, list(spec.mean), list(spec.std), rt.device))
    served = serving_module(serving)
    if served is None:
        return new_metrics, new_correct, None, {}
    s_canonical, s_views = images_for(cfg, client, bucket, data, serving.input_spec)
    s_mean, s_std = list(serving.input_spec.mean), list(serving.input_spec.std)
    serving_metrics, serving_correct = evaluate_heldout(served, s_canonical, s_mean, s_std, *rest)
    serving_metrics.update(view_stats(served, s_views, s_mean, s_std, rt.device))
    return new_metrics, new_correct, serving_metrics, serving_correct


def serving_module(serving: Serving) -> torch.nn.Module | None:
    """The serving encoder as a module to evaluate: its PyTorch weights, or its ONNX through onnxruntime."""
    if serving.model is not None:
        return FitInput(serving.model, (serving.input_spec.height, serving.input_spec.width))
    if serving.onnx is not None and serving.manifest is not None:
        from .onnx_module import OnnxEncoderModule

        enc = serving.manifest["encoder"]
        return OnnxEncoderModule(serving.onnx, enc["inputName"], enc["outputName"])
    return None


def images_for(cfg: TrainConfig, client, bucket: str, data: Dataset, spec: InputSpec) -> tuple[ViewColumn, Views]:
    """(canonical, views) of `data`'s images decoded at another model's input spec (rows aligned with `data`)."""
    if (spec.height, spec.width, spec.channels, spec.fit, spec.kernel) == data.spec_key:
        return data.canonical, data.views
    other = load_dataset(
        client, bucket, cfg.cache_dir, cfg.read_workers, spec, log=lambda *a, **k: None, check_resolution=False, cache_max_bytes=cfg.cache_max_bytes
    )
    row = {image_id: i for i, image_id in enumerate(other.image_ids)}
    missing = [i for i in data.image_ids if i not in row]
    if missing:
        raise TrainingError(f"{len(missing)} images changed while the run compared models; run again")
    rows = other.views.subset([row[i] for i in data.image_ids])
    return rows.canonical, rows


def export_with_parity(encoder, spec: InputSpec, metrics: dict, gate: GateDecision) -> tuple[bytes, GateDecision]:
    """ONNX, checked against PyTorch on the same inputs; a failed check fails the gate."""
    onnx_bytes = export_onnx(encoder, spec.channels, spec.height, spec.width)
    try:
        metrics["onnxParityMaxAbsDiff"] = check_parity(encoder, onnx_bytes, spec.channels, spec.height, spec.width)
    except ExportParityError as err:
        gate = GateDecision(passed=False, reasons=[*gate.reasons, str(err)], rule=gate.rule, comparisons=gate.comparisons)
    return onnx_bytes, gate


def publish(
    cfg, rt, client, bucket, job_id, encoder, onnx_bytes, spec: InputSpec, serving: Serving, split: Split, metrics, gate, pseudo, history: History, start=""
) -> str:
    """The version (always, with its gate decision), its report and curves; when it passed, its
    pseudo-labels and the candidate pointer that starts the rollout."""
    data = split.data
    version = next_version(client, bucket)
    manifest = build_manifest(
        version=version,
        parent=serving.version,
        input_spec=spec,
        architecture=encoder.spec.to_dict(),
        embedding_dim=encoder.spec.embedding_dim,
        metrics=_finite(metrics),
        gate=gate,
        dataset={"snapshot": data.snapshot, "images": len(data), "labels": len(data.label_of)},
        training={
            "kind": "simclr",
            "path": start,
            "jobId": job_id,
            "gitSha": git_sha(),
            "device": str(rt.device),
            "worldSize": rt.world,
            "config": cfg.to_dict(),
        },
    )
    encoder.eval()
    publish_version(client, bucket, version, onnx_bytes, encoder_to_bytes(encoder.cpu()), manifest)
    history_doc = {"loss": history.loss, "finetuneLoss": history.finetune_loss, "accuracy": history.accuracy}
    report = {"version": version, "jobId": job_id, "createdAt": utc_now(), "gate": gate.to_dict(), "metrics": _finite(metrics), "history": history_doc}
    put_json(client, bucket, keys.report(version), report)
    panels = [
        {"simclr loss": history.loss},
        *([{"fine-tune loss": history.finetune_loss}] if history.finetune_loss else []),
        *([history.accuracy] if history.accuracy else []),
    ]
    put_bytes(client, bucket, keys.model_file(version, "curves.png"), curves_png(panels), "image/png")
    if gate.passed:
        items = [
            {"imageId": data.image_ids[row], "key": data.keys[row], "label": data.class_names[c], "confidence": round(conf, 4)}
            for row, c, conf in pseudo["accepted"]
        ]
        publish_pseudo_labels(client, bucket, version, items, {data.class_names[i]: round(float(t), 4) for i, t in enumerate(pseudo["thresholds"])})
        set_candidate(client, bucket, version)
    return version


def pretrain(
    cfg: TrainConfig,
    rt: Runtime,
    net: torch.nn.Module,
    views: Views | torch.Tensor,
    spec: InputSpec,
    budget_s: float,
    history: History,
    job_id: str,
    recorder,
    log,
    on_eval=None,
) -> dict:
    """SimCLR pretraining until the budget (or max_steps) is used. `on_eval(step)`, if given, is called
    every 5 log intervals on the main rank and returns held-out accuracies for the curves.

    `views`: rows on local disk (Views; each rank reads only its own share of each step's images, a
    background thread a few steps ahead), or a tensor already on the device (gathered in place)."""
    n = views.shape[0]
    gen = torch.Generator(device=rt.device).manual_seed(cfg.seed * 1000 + rt.rank)
    cpu_gen = torch.Generator().manual_seed(cfg.seed)
    params = list(net.parameters())
    opt = make_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay)
    ckpt_path = Path(cfg.cache_dir) / "checkpoints" / f"{job_id}.pt"
    step, elapsed_before = 0, 0.0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=rt.device, weights_only=False)
        unwrap(net).load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, elapsed_before = ckpt["step"], ckpt["elapsed"]
        log(f"[train] resumed {job_id} at step {step} ({elapsed_before:.0f} s already spent)", flush=True)
    local_batch = max(2, cfg.batch_size // rt.world)

    def rank_rows():
        """This rank's share of each step's images (every rank draws the same global order)."""
        order, cursor = torch.randperm(n, generator=cpu_gen), 0
        while True:
            if cursor + cfg.batch_size > n:
                order, cursor = torch.randperm(n, generator=cpu_gen), 0
            yield order[cursor : cursor + min(cfg.batch_size, n)][rt.rank :: rt.world][:local_batch]
            cursor += cfg.batch_size

    next_rows = rank_rows().__next__
    v = views.shape[1]
    use_amp = cfg.amp and rt.device.type == "cuda"
    net.train()
    start = time.monotonic() - elapsed_before
    images_seen = 0
    with batches_for(views, next_rows, rt.device, cfg.prefetch_batches) as batches:
        while True:
            # Rank 0's clock decides for every rank: when to stop, and the schedule's progress (so every
            # rank steps with the same learning rate). Each rank's own budget also counts its own data
            # loading; left to decide alone, one rank would leave while the others wait in all_gather.
            elapsed = time.monotonic() - start
            progress = rank0_value(rt, max(step / cfg.max_steps if cfg.max_steps else 0.0, elapsed / budget_s))
            if progress >= 1.0:
                break
            # ---- batch: two different views per image (Lambda views), each augmented again on the device
            batch = batches.next()
            rows = torch.arange(len(batch), device=rt.device)
            first = torch.randint(0, v, (len(rows),), generator=gen, device=rt.device)
            second = (first + 1 + torch.randint(0, max(v - 1, 1), (len(rows),), generator=gen, device=rt.device)) % v if v > 1 else first
            aug = dict(crop_scale_min=cfg.crop_scale_min, jitter_strength=cfg.jitter_strength, grayscale_p=cfg.grayscale_p, blur_p=cfg.blur_p)
            x1 = simclr_view(to_unit_float(batch[rows, first]), gen, **aug)
            x2 = simclr_view(to_unit_float(batch[rows, second]), gen, **aug)
            x = normalize(torch.cat([x1, x2]), list(spec.mean), list(spec.std))
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            # ---- forward, NT-Xent, backward, step
            lr = warmup_cosine(step, progress, cfg.warmup_steps, cfg.lr)
            set_lr(opt, lr)
            with torch.autocast(device_type=rt.device.type, dtype=torch.bfloat16, enabled=use_amp):
                z = net(x)
            z1, z2 = z.float().chunk(2)
            loss = nt_xent(z1, z2, cfg.temperature)
            # A non-finite loss on any rank stops the run on every rank (the run record says failed).
            if any_rank(rt, not bool(torch.isfinite(loss))):
                raise TrainingError(f"training diverged: non-finite loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            step += 1
            images_seen += len(rows) * rt.world
            if step % cfg.log_every == 0 or step == 1:
                # Each rank's loss is its share times the world size (losses.nt_xent): their mean is the whole batch's loss.
                value = mean_over_ranks(rt, loss)
                history.loss.append((step, value))
                log(f"[train] step {step} loss {value:.4f} lr {lr:.2e} {time.monotonic() - start:.0f}/{budget_s:.0f} s", flush=True)
                recorder.update(phase="pretraining", step=step, loss=round(value, 4), progress=round(min(progress, 1.0), 3))
            if on_eval is not None and rt.main and step % (5 * cfg.log_every) == 0:
                for name, value in on_eval(step).items():
                    history.accuracy.setdefault(name, []).append((step, value))
                net.train()
            if rt.main and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save_checkpoint(ckpt_path, net, opt, step, time.monotonic() - start, cfg)
    seconds = time.monotonic() - start - elapsed_before
    ips = images_seen / seconds if seconds > 0 else 0.0
    wait = batches.wait_seconds
    log(f"[train] pretraining done: {step} steps, {ips:.0f} images/s, {100 * wait / max(seconds, 1e-9):.1f}% of the time waiting for data", flush=True)
    if rt.main and ckpt_path.exists():
        ckpt_path.unlink()
    return {"steps": step, "images_per_second": round(ips, 1), "data_wait_share": round(wait / seconds, 4) if seconds > 0 else 0.0}


def heldout_knn_curve(cfg, rt: Runtime, encoder: torch.nn.Module, data: Dataset, spec: InputSpec, train_rows, holdout_rows):
    """kNN accuracy on the held-out labels during pretraining: it embeds only the labelled images, so it is cheap."""
    if not train_rows or not holdout_rows or len(data.class_names) < 2:
        return None
    rows = list(train_rows) + list(holdout_rows)
    images = data.canonical[rows]
    ty = torch.tensor([data.label_of[r] for r in train_rows], device=rt.device)
    hy = torch.tensor([data.label_of[r] for r in holdout_rows], device=rt.device)

    def evaluate(_step: int) -> dict[str, float]:
        emb = embed_images(encoder, images, list(spec.mean), list(spec.std), rt.device)
        return {"held-out kNN": knn_accuracy(emb[: len(train_rows)], ty, emb[len(train_rows) :], hy, k=cfg.knn_k, num_classes=len(data.class_names))}

    return evaluate


def save_checkpoint(path: Path, net, opt, step: int, elapsed: float, cfg: TrainConfig) -> None:
    """Model, optimizer, step, elapsed time and config; written atomically, so a crash leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": unwrap(net).state_dict(), "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed, "config": cfg.to_dict()}, tmp)
    os.replace(tmp, path)


def pseudo_label_agreement(client, bucket: str, serving_version: str, data: Dataset, accepted) -> float | None:
    """Share of the images both the serving model and the new one pseudo-labelled on which they agree
    (a label-free signal the gate reports); None when the serving model published none."""
    doc = get_json(client, bucket, keys.pseudo_labels(serving_version))
    if not doc or not doc.get("items"):
        return None
    serving = {item["imageId"]: item["label"] for item in doc["items"]}
    both = [(serving[data.image_ids[row]], data.class_names[c]) for row, c, _conf in accepted if data.image_ids[row] in serving]
    return round(sum(a == b for a, b in both) / len(both), 4) if both else None


def _round(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in d.items()}


def _finite(d):
    """JSON has no NaN: unmeasurable metrics become null."""
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def evaluate_version(cfg: TrainConfig, client, bucket: str, version: str | None = None) -> dict:
    """Held-out metrics of a published version on the current data (the same split a run would use)."""
    rt = Runtime(device=torch.device("cuda") if (cfg.device != "cpu" and torch.cuda.is_available()) else torch.device("cpu"))
    version = version or (read_serving(client, bucket) or {}).get("version")
    if not version:
        raise TrainingError("no version given and no serving model")
    manifest = get_json(client, bucket, keys.manifest(version))
    if manifest is None:
        raise TrainingError(f"model {version} is not published")
    weights = get_bytes(client, bucket, keys.model_file(version, WEIGHTS_FILE))
    spec = InputSpec.from_dict(manifest["input"])
    data = load_dataset(client, bucket, cfg.cache_dir, cfg.read_workers, spec, check_resolution=False, cache_max_bytes=cfg.cache_max_bytes)
    train_rows, holdout_rows = holdout_split(data.label_of, cfg.holdout_fraction, cfg.seed)
    if weights is not None:
        encoder = encoder_from_bytes(weights).to(rt.device)
    else:
        from .onnx_module import OnnxEncoderModule

        encoder = OnnxEncoderModule(
            get_bytes(client, bucket, keys.model_file(version, manifest["encoder"]["file"])),
            manifest["encoder"]["inputName"],
            manifest["encoder"]["outputName"],
        )
    metrics, _correct = evaluate_heldout(
        encoder,
        data.canonical,
        list(spec.mean),
        list(spec.std),
        rt.device,
        train_rows,
        [data.label_of[r] for r in train_rows],
        holdout_rows,
        [data.label_of[r] for r in holdout_rows],
        len(data.class_names),
        cfg.knn_k,
    )
    return {"version": version, **(_finite(_round(metrics)) if data.class_names else metrics)}

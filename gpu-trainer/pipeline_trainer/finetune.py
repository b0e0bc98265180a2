"""Learning from the human labels: FixMatch fine-tuning of the encoder, then pseudo-labels for the
unlabelled images from a fresh linear head on the final encoder."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .augment import normalize, simclr_view, to_unit_float, weak_view
from .data import Dataset
from .evaluate import embed_images
from .manifest import InputSpec
from .model import Encoder
from .optim import make_optimizer
from .pseudo_label import accuracy_and_coverage, class_thresholds, predict, select, train_classifier
from .runtime import History, Runtime, TrainingError
from .store import as_views, on_device


def fixmatch_finetune(
    cfg,
    rt: Runtime,
    encoder: Encoder,
    views,
    spec: InputSpec,
    labelled: dict[int, int],
    unlabelled: np.ndarray,
    num_classes: int,
    budget_s: float,
    history: History,
    log,
) -> torch.nn.Linear:
    """FixMatch (Sohn et al. 2020): cross-entropy on the labels, plus cross-entropy on strong views of
    unlabelled images against the weak view's prediction where it clears the class threshold.
    Returns the fine-tuned classifier (on L2-normalised embeddings, as `pseudo_label.predict` expects)."""
    gen = torch.Generator(device=rt.device).manual_seed(cfg.seed + 7)
    rows_gen = torch.Generator().manual_seed(cfg.seed + 7)  # which rows each step reads (on the CPU: they are read from disk)
    views = as_views(views)
    mean, std = list(spec.mean), list(spec.std)
    lab_rows = torch.tensor(sorted(labelled))
    lab_y = torch.tensor([labelled[r] for r in sorted(labelled)], device=rt.device)
    unl_rows = torch.from_numpy(unlabelled)
    with torch.no_grad():
        emb = embed_images(encoder, views.canonical, mean, std, rt.device)
    classifier = train_classifier(emb[lab_rows.to(rt.device)], lab_y, num_classes, seed=cfg.seed).train()
    params = list(encoder.parameters()) + list(classifier.parameters())
    opt = make_optimizer("adamw", params, cfg.finetune_lr, cfg.weight_decay)
    thresholds = class_thresholds(predict(classifier, emb[unl_rows.to(rt.device)]), cfg.pseudo_threshold, cfg.per_class_thresholds)
    del emb

    def logits(x):
        return classifier(F.normalize(encoder(normalize(x, mean, std)), dim=1)) * 10.0

    start = time.monotonic()
    step = 0
    encoder.train()
    while time.monotonic() - start < budget_s:
        pick = torch.randint(0, len(lab_rows), (min(64, cfg.batch_size),), generator=rows_gen)
        li = lab_rows[pick]
        ui = unl_rows[torch.randint(0, len(unl_rows), (cfg.batch_size,), generator=rows_gen)]
        vi = torch.randint(0, views.shape[1], (len(li),), generator=gen, device=rt.device)
        x_lab = weak_view(to_unit_float(on_device(views[li], rt.device)[torch.arange(len(li), device=rt.device), vi]), gen)
        x_unl = to_unit_float(on_device(views.canonical[ui], rt.device))
        with torch.no_grad():
            encoder.eval()
            probs = F.softmax(logits(weak_view(x_unl, gen)), dim=1)
            encoder.train()
            conf, target = probs.max(1)
            mask = conf >= thresholds[target]
        strong = simclr_view(x_unl, gen, crop_scale_min=cfg.crop_scale_min, jitter_strength=cfg.jitter_strength, grayscale_p=cfg.grayscale_p, blur_p=cfg.blur_p)
        y_lab = lab_y[pick.to(rt.device)]
        out = logits(torch.cat([x_lab, strong]))
        loss = F.cross_entropy(out[: len(li)], y_lab)
        if mask.any():
            loss = loss + cfg.unlabelled_weight * (F.cross_entropy(out[len(li) :], target, reduction="none") * mask).mean()
        if not torch.isfinite(loss):
            raise TrainingError("fine-tune diverged (non-finite loss)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.log_every == 0:
            history.finetune_loss.append((step, float(loss.detach())))
            log(f"[finetune] step {step} loss {float(loss.detach()):.4f} accepted {float(mask.float().mean()):.2f}", flush=True)
        if step % 50 == 0:
            with torch.no_grad():
                encoder.eval()
                thresholds = class_thresholds(
                    predict(classifier, embed_images(encoder, views.canonical, mean, std, rt.device, rows=unlabelled)),
                    cfg.pseudo_threshold,
                    cfg.per_class_thresholds,
                )
                encoder.train()
    encoder.eval()
    log(f"[finetune] {step} steps in {time.monotonic() - start:.0f} s", flush=True)
    return classifier.eval()


def pseudo_labels(
    cfg, rt: Runtime, encoder: Encoder, data: Dataset, spec: InputSpec, train_rows, holdout_rows, unlabelled: np.ndarray, num_classes: int
) -> dict:
    """Accepted pseudo-labels for the unlabelled images from a fresh linear head on the final encoder
    and the training labels (measured: more accurate than the fine-tune's own classifier, which fits
    its pseudo-labels); accuracy and coverage measured the same way on the held-out labels.
    Thresholds are FlexMatch's without the warm-up term, floored."""
    if num_classes < 2 or not train_rows:
        return {"accepted": [], "thresholds": [], "metrics": {}}
    emb = embed_images(encoder, data.canonical, list(spec.mean), list(spec.std), rt.device)
    y_train = torch.tensor([data.label_of[r] for r in train_rows], device=rt.device)
    head = train_classifier(emb[train_rows], y_train, num_classes, seed=cfg.seed)
    probs_unl = predict(head, emb[torch.from_numpy(unlabelled).to(rt.device)]) if len(unlabelled) else torch.zeros(0, num_classes, device=rt.device)
    thresholds = (
        class_thresholds(probs_unl, cfg.pseudo_threshold, cfg.per_class_thresholds, warmup=False)
        if len(unlabelled)
        else torch.full((num_classes,), cfg.pseudo_threshold)
    )
    chosen = select(probs_unl, thresholds)
    accepted = [(int(unlabelled[i]), int(chosen.labels[i]), float(chosen.confidence[i])) for i in torch.nonzero(chosen.accepted).flatten().tolist()]
    metrics = {"pseudoLabelCoverage": float(chosen.accepted.float().mean()) if len(unlabelled) else 0.0}
    if holdout_rows:
        held = select(predict(head, emb[holdout_rows]), thresholds)
        acc, cov = accuracy_and_coverage(held, np.array([data.label_of[r] for r in holdout_rows]))
        metrics.update({"pseudoLabelAccuracy": acc, "pseudoLabelHeldOutCoverage": cov})
    return {"accepted": accepted, "thresholds": thresholds.tolist(), "metrics": metrics}

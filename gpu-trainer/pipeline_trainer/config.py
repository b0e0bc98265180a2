"""The trainer's configuration: one dataclass, unknown keys rejected.

Sources, later wins: defaults < JSON file (`--config FILE`) < environment (`TRAINER_<KEY>`, e.g.
`TRAINER_BATCH_SIZE=512`) < command line (`--set key=value`, repeatable; `--max-minutes N`).
The resolved config is printed at start and saved in every checkpoint and manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from .model import ARCHS


class ConfigError(ValueError):
    """A key is unknown or a value is malformed; the message names it."""


@dataclass
class TrainConfig:
    # data
    holdout_fraction: float = 0.2  # share of the human-labelled images held out for evaluation, never trained on
    seed: int = 0
    cache_dir: str = ".cache/trainer"
    # the decoded-image cache (cache_dir/derived) is pruned to this after each load, least recently used
    # first; what the load used, and what any run used in the last hour, is never removed
    cache_max_gb: float = 20.0
    read_workers: int = 16
    prefetch_batches: int = 3  # steps whose images a background thread reads ahead of training (from local disk)
    # model: a preset names a tested combination of the keys below (TRAINER_PRESET, --preset)
    preset: str = ""
    # small-resnet (<= 64 px) | resnet18 | resnet50 | vit-s16; "": the serving encoder's (continue training
    # it, e.g. an imported pretrained one), small-resnet when the serving version has no weights of a known arch
    arch: str = ""
    input_size: int = 0  # pixels per side of the model's input; 0: the serving model's
    # the small ResNet's own keys (used when there is no serving encoder to warm-start from, or warm_start is off)
    width: int = 16
    blocks_per_stage: list[int] = field(default_factory=lambda: [1, 1, 1])
    pooled_grid: int = 4
    embedding_dim: int = 128
    projection_dim: int = 64
    warm_start: bool = True
    # Continuing an encoder that learned something (a trained or imported version, not v0's random init):
    # the learning rates are scaled by this, so a run refines it instead of overwriting what it knew
    warm_start_lr_scale: float = 0.1
    # contrastive pretraining (SimCLR, NT-Xent)
    temperature: float = 0.2
    batch_size: int = 256
    optimizer: str = "adamw"  # adamw | lars
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    max_steps: int = 0  # 0: as many as the time budget allows
    max_minutes: float = 10.0
    pretrain_share: float = 0.7  # of the time budget; the rest: pseudo-labelling, fine-tune, evaluation, export
    # device-side augmentation on top of the Lambda views
    crop_scale_min: float = 0.35
    jitter_strength: float = 0.4
    grayscale_p: float = 0.2
    blur_p: float = 0.2
    # pseudo-labelling (FlexMatch-style per-class thresholds) and the FixMatch-style fine-tune
    pseudo_threshold: float = 0.9
    per_class_thresholds: bool = True
    finetune: bool = True
    finetune_share: float = 0.2
    finetune_lr: float = 5e-4
    unlabelled_weight: float = 1.0
    # evaluation and gate
    knn_k: int = 20
    gate_confidence: float = 0.95  # reject a new encoder only when it is worse at this confidence (paired test)
    gate_min_heldout: int = 20  # fewer held-out labels than this: the label-free checks decide
    # runtime
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA; fp32 on CPU
    channels_last: bool = True  # NHWC convolutions: faster on CUDA and, with oneDNN, on CPU
    checkpoint_every: int = 100
    log_every: int = 10

    @property
    def cache_max_bytes(self) -> int:
        return int(self.cache_max_gb * 1e9)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        checks = [
            (0.0 <= self.holdout_fraction < 1.0, "holdout_fraction must be in [0, 1)"),
            (self.arch == "" or self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)} (or empty: the serving encoder's)"),
            (self.input_size == 0 or 16 <= self.input_size <= 1024, "input_size must be 0 (the serving model's) or 16-1024"),
            (self.arch != "small-resnet" or self.input_size <= 64, "small-resnet is for inputs of at most 64 pixels; use resnet18, resnet50 or vit-s16"),
            (self.arch != "vit-s16" or self.input_size % 16 == 0, "vit-s16 needs an input_size that is a multiple of 16"),
            (not self.preset or self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}"),
            (0.5 <= self.gate_confidence < 1.0, "gate_confidence must be in [0.5, 1)"),
            (self.gate_min_heldout >= 1, "gate_min_heldout must be at least 1"),
            (self.batch_size >= 2, "batch_size must be at least 2"),
            (1 <= self.prefetch_batches <= 64, "prefetch_batches must be 1-64"),
            (self.cache_max_gb >= 0, "cache_max_gb must be 0 or more"),
            (0 < self.warm_start_lr_scale <= 1, "warm_start_lr_scale must be in (0, 1]"),
            (self.temperature > 0, "temperature must be positive"),
            (self.optimizer in ("adamw", "lars"), "optimizer must be adamw or lars"),
            (self.max_minutes > 0, "max_minutes must be positive"),
            (0 < self.pretrain_share <= 1 and 0 <= self.finetune_share < 1, "pretrain_share and finetune_share must be fractions"),
            (self.pretrain_share + self.finetune_share <= 0.95, "pretrain_share + finetune_share must leave time for evaluation"),
            (0 < self.pseudo_threshold < 1, "pseudo_threshold must be in (0, 1)"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (0 < self.crop_scale_min <= 1, "crop_scale_min must be in (0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


_FIELDS = {f.name: f for f in fields(TrainConfig)}

# Named, tested combinations. `cpu-small` is the CPU default (the embedded stack); the ECS task runs
# a GPU preset by default. Keys set explicitly (file, TRAINER_*, --set) override the preset's.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {"arch": "small-resnet", "input_size": 32, "embedding_dim": 128, "batch_size": 256, "lr": 2e-3},
    "gpu-resnet18-128": {
        "arch": "resnet18",
        "input_size": 128,
        "embedding_dim": 256,
        "projection_dim": 128,
        "batch_size": 512,
        "lr": 1e-3,
        "warmup_steps": 100,
    },
    "gpu-resnet50-224": {
        "arch": "resnet50",
        "input_size": 224,
        "embedding_dim": 256,
        "projection_dim": 128,
        "batch_size": 256,
        "lr": 1e-3,
        "warmup_steps": 100,
    },
    "gpu-vits16-224": {
        "arch": "vit-s16",
        "input_size": 224,
        "embedding_dim": 256,
        "projection_dim": 128,
        "batch_size": 256,
        "lr": 5e-4,
        "weight_decay": 0.05,
        "warmup_steps": 200,
    },
}


def _coerce(name: str, raw: Any) -> Any:
    default = getattr(TrainConfig(), name)
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, list):
                raise ValueError(raw)
            return [int(v) for v in value]
        return str(raw)
    except (TypeError, ValueError, json.JSONDecodeError) as err:
        raise ConfigError(f"{name}: cannot use {raw!r} as {type(default).__name__}") from err


def _apply(cfg: TrainConfig, values: dict[str, Any], source: str) -> None:
    for name, raw in values.items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown config key {name!r} in {source}")
        setattr(cfg, name, _coerce(name, raw))


def load_config(
    file: str | None = None, overrides: list[str] | None = None, env: dict[str, str] | None = None, preset: str | None = None, **explicit: Any
) -> TrainConfig:
    """Defaults < the preset < JSON file < environment (TRAINER_*) < --set < explicit flags. The
    preset is named by --preset, else --set preset=, TRAINER_PRESET or the file's "preset"."""
    data: dict[str, Any] = {}
    if file:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a JSON object")
    env = os.environ if env is None else env
    from_env = {k[len("TRAINER_") :].lower(): v for k, v in env.items() if k.startswith("TRAINER_")}
    pairs = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value
    name = preset or pairs.get("preset") or from_env.get("preset") or data.get("preset") or ""
    cfg = TrainConfig()
    if name:
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}: one of {', '.join(PRESETS)}")
        _apply(cfg, {**PRESETS[name], "preset": name}, f"preset {name}")
    _apply(cfg, data, file or "file")
    _apply(cfg, from_env, "environment (TRAINER_*)")
    _apply(cfg, pairs, "--set")
    _apply(cfg, {k: v for k, v in explicit.items() if v is not None}, "command line")
    if name:
        cfg.preset = name
    return cfg.validate()

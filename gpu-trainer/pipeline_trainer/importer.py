"""`import`: publish an encoder the user brought (POST /models/import, `models import`).

The API validated the ONNX with onnxruntime-node and wrote `imports/<importId>/request.json`; this job,
under the training lease, (1) loads the ONNX, and the PyTorch weights when they came with it (checked
to reproduce the ONNX, so a later run can continue training them), (2) evaluates it against the
serving version on the held-out labels with the training gate (the paired test; without enough
labels it is accepted, and the decision says so), (3) publishes it as a new version and, when the
gate passed, makes it the candidate: the rollout re-embeds every image with it.
"""

from __future__ import annotations

import io

import torch

from . import keys
from .config import TrainConfig
from .data import holdout_split, load_dataset
from .gate import GatePolicy
from .manifest import GateDecision, InputSpec, build_manifest, git_sha
from .model import build_encoder, encoder_spec, encoder_to_bytes, spec_from_dict
from .onnx_module import OnnxEncoderModule
from .publish import next_version, publish_gated
from .runtime import TrainingError
from .s3io import get_bytes, get_json

WEIGHTS_PARITY_TOLERANCE = 1e-3  # relative to the largest output value


def load_weights(payload_bytes: bytes, arch: str, spec: InputSpec, embedding_dim: int) -> torch.nn.Module:
    """The imported PyTorch weights as one of the trainer's encoders: either this package's
    `encoder.pt` format ({"spec", "state_dict"}) or a plain state dict of `arch` built at the import's
    input size and embedding dimension."""
    try:
        payload = torch.load(io.BytesIO(payload_bytes), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise TrainingError(f"the weights file is not a PyTorch state dict torch.load can read safely: {err}") from err
    if isinstance(payload, dict) and "spec" in payload and "state_dict" in payload:
        model_spec, state = spec_from_dict(payload["spec"]), payload["state_dict"]
        if model_spec.arch != arch:
            raise TrainingError(f"the weights are a {model_spec.arch}, but the import says arch {arch}")
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        model_spec, state = encoder_spec(arch, spec.channels, embedding_dim, (spec.height, spec.width)), payload
    else:
        raise TrainingError("the weights file holds neither a state dict nor this trainer's encoder.pt format")
    model = build_encoder(model_spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise TrainingError(f"the weights do not fit a {arch} at {spec.height}x{spec.width} with {embedding_dim} dimensions: {str(err)[:400]}") from err
    return model.eval()


def weights_parity(model: torch.nn.Module, onnx: OnnxEncoderModule, spec: InputSpec) -> float:
    """Largest difference between the weights and the ONNX on random inputs, relative to the output scale."""
    x = torch.randn(4, spec.channels, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).float()
    actual = onnx(x)
    if actual.shape != expected.shape:
        raise TrainingError(f"the weights give embeddings of shape {tuple(expected.shape)}, the ONNX {tuple(actual.shape)}")
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


def import_job(import_id: str):
    """The job body for train.run: evaluate, gate and publish the import `import_id`."""

    def work(cfg: TrainConfig, client, bucket: str, job_id: str, rt, started, deadline, recorder, log) -> dict:
        from .train import Serving, _finite, _round, compare_with_serving, load_serving, logged_decision

        request = get_json(client, bucket, keys.import_file(import_id, "request.json"))
        if request is None:
            raise TrainingError(f"no import request imports/{import_id}/request.json")
        onnx_bytes = get_bytes(client, bucket, request["source"])
        if onnx_bytes is None:
            raise TrainingError(f"the ONNX {request['source']} is gone")
        spec = InputSpec.from_dict(request["input"])
        names = request["onnx"]
        candidate = OnnxEncoderModule(onnx_bytes, names["inputName"], names["outputName"])
        path, weights_bytes, architecture = "import (ONNX only)", None, {"arch": "imported", "source": request["source"]}
        metrics: dict = {"importValidation": request.get("validation", {})}
        if request.get("weights"):
            recorder.update(phase="checking weights")
            raw = get_bytes(client, bucket, request["weights"])
            if raw is None:
                raise TrainingError(f"the weights {request['weights']} are gone")
            model = load_weights(raw, request["arch"], spec, names["embeddingDim"])
            parity = weights_parity(model, candidate, spec)
            if parity > WEIGHTS_PARITY_TOLERANCE:
                raise TrainingError(
                    f"the weights do not reproduce the ONNX (largest difference {parity:.3g} of the output scale): they must be the same network"
                )
            metrics["weightsParity"] = parity
            weights_bytes, architecture = encoder_to_bytes(model), {**model.spec.to_dict(), "imported": True, "source": request["source"]}
            path = "import with weights (later runs continue training them)"
        log(f"[import] {request['source']}: {path}", flush=True)

        serving: Serving = load_serving(client, bucket, rt)
        recorder.update(phase="evaluation")
        try:
            data = load_dataset(client, bucket, cfg.cache_dir, cfg.read_workers, spec, log, cache_max_bytes=cfg.cache_max_bytes)
        except RuntimeError as err:
            if "no derived images" not in str(err):
                raise TrainingError(str(err)) from err
            data = None
        policy = GatePolicy(confidence=cfg.gate_confidence, min_heldout=cfg.gate_min_heldout, seed=cfg.seed, label_free="accept")
        if data is None:
            gate = GateDecision(passed=True, reasons=["passed", "no images yet: nothing to evaluate on; accepted"], rule="import: accepted without images")
            dataset = {"snapshot": None, "images": 0, "labels": 0}
            log(f"[gate] {gate.rule}", flush=True)
        else:
            train_rows, holdout_rows = holdout_split(data.label_of, cfg.holdout_fraction, cfg.seed)
            new_metrics, new_correct, serving_metrics, serving_correct = compare_with_serving(
                cfg, rt, client, bucket, candidate, spec, serving, data, train_rows, holdout_rows
            )
            gate = logged_decision(log, "imported", serving.version, (new_metrics, new_correct), (serving_metrics, serving_correct), policy)
            metrics.update(new_metrics)
            metrics["serving"] = {"version": serving.version, **(serving_metrics or {})}
            metrics["heldOutLabels"] = len(holdout_rows)
            dataset = {"snapshot": data.snapshot, "images": len(data), "labels": len(data.label_of)}

        recorder.update(phase="publishing")
        version = next_version(client, bucket)
        manifest = build_manifest(
            version=version,
            parent=serving.version,
            input_spec=spec,
            architecture=architecture,
            embedding_dim=int(names["embeddingDim"]),
            metrics=_finite(metrics),
            gate=gate,
            dataset=dataset,
            training={"kind": "import", "path": path, "importId": import_id, "source": request["source"], "jobId": job_id, "gitSha": git_sha()},
            input_name=names["inputName"],
            output_name=names["outputName"],
        )
        state = publish_gated(client, bucket, version, onnx_bytes, weights_bytes, manifest, job_id)
        log(f"[import] {version} {state}: {'; '.join(gate.reasons)}", flush=True)
        return {"state": state, "version": version, "phase": "done", "gate": gate.to_dict(), "metrics": _finite(_round(metrics))}

    return work

"""Continuing from an imported ONNX-only encoder: there are no PyTorch weights to train.

First choice: convert the ONNX graph to PyTorch with onnx2torch (when installed; it needs
torchvision, which this trainer does not depend on). Otherwise, the fallback used here: keep the
imported encoder frozen and train a small residual adapter head on its embeddings,

    h(e) = e + W2 relu(W1 e + b1) + b2      (W2, b2 start at zero: at step 0 the head is the identity)

with NT-Xent between the embeddings of two stored views of the same image, plus cross-entropy of a
linear classifier on the human labels the run may learn from. The served model is one ONNX graph:
the imported encoder with the head's nodes appended. The gate compares it with the serving
(imported) encoder on the held-out labels like any run, so the better of the two serves. The
manifest records which path was taken.
"""

from __future__ import annotations

import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

from .augment import normalize, to_unit_float
from .losses import nt_xent
from .manifest import GateDecision, build_manifest, git_sha
from .publish import next_version, publish_gated


class AdapterHead(torch.nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(dim, hidden)
        self.fc2 = torch.nn.Linear(hidden, dim)
        torch.nn.init.zeros_(self.fc2.weight)
        torch.nn.init.zeros_(self.fc2.bias)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e + self.fc2(torch.relu(self.fc1(e)))


class FrozenWithHead(torch.nn.Module):
    """The imported encoder (onnxruntime) followed by the head: what the composed ONNX computes."""

    def __init__(self, frozen: torch.nn.Module, head: AdapterHead) -> None:
        super().__init__()
        self.frozen, self.head = frozen, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.frozen(x).to(next(self.head.parameters()).device))


def onnx2torch_status() -> str:
    try:
        import onnx2torch  # noqa: F401
    except Exception as err:  # noqa: BLE001 - ImportError, or torchvision failing to load inside it
        return f"onnx2torch unavailable ({type(err).__name__}: {str(err)[:120]})"
    return "onnx2torch installed, but fine-tuning a converted graph is not supported yet"


@torch.no_grad()
def frozen_embeddings(frozen: torch.nn.Module, views, mean, std, device, batch: int = 256) -> torch.Tensor:
    """uint8 [N, V, H, W, C] (an array or Views, read `batch` images at a time) -> raw embeddings [N, V, D] of the frozen encoder."""
    n, v = views.shape[:2]
    out = []
    for i in range(0, n, batch):
        rows = np.ascontiguousarray(views[i : i + batch])
        flat = rows.reshape(len(rows) * v, *rows.shape[2:])
        x = normalize(to_unit_float(torch.from_numpy(flat).to(device)), mean, std)
        out.append(frozen(x).float().reshape(len(rows), v, -1))
    return torch.cat(out)


def train_head(
    emb: torch.Tensor, labelled: dict[int, int], num_classes: int, budget_s: float, seed: int, log, max_steps: int = 3000
) -> tuple[AdapterHead, dict]:
    torch.manual_seed(seed)
    n, v, dim = emb.shape
    head = AdapterHead(dim, max(64, dim)).to(emb.device)
    probe = torch.nn.Linear(dim, max(num_classes, 2)).to(emb.device) if num_classes >= 2 and labelled else None
    params = [*head.parameters(), *(probe.parameters() if probe is not None else [])]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    rows = torch.tensor(sorted(labelled), device=emb.device)
    targets = torch.tensor([labelled[r] for r in sorted(labelled)], device=emb.device)
    scale = emb.norm(dim=2).mean().clamp_min(1e-6)
    gen = torch.Generator(device=emb.device).manual_seed(seed)
    start, step, losses = time.monotonic(), 0, []
    while step < max_steps and time.monotonic() - start < budget_s:
        idx = torch.randint(0, n, (min(256, n),), generator=gen, device=emb.device)
        a = torch.randint(0, v, (len(idx),), generator=gen, device=emb.device)
        b = (a + 1 + torch.randint(0, max(v - 1, 1), (len(idx),), generator=gen, device=emb.device)) % v if v > 1 else a
        z1 = F.normalize(head(emb[idx, a] / scale), dim=1)
        z2 = F.normalize(head(emb[idx, b] / scale), dim=1)
        loss = nt_xent(z1, z2, 0.2)
        if probe is not None and len(rows) > 0:
            pick = rows[torch.randint(0, len(rows), (min(128, len(rows)),), generator=gen, device=emb.device)]
            view = torch.randint(0, v, (len(pick),), generator=gen, device=emb.device)
            h = F.normalize(head(emb[pick, view] / scale), dim=1)
            loss = loss + F.cross_entropy(probe(h) * 10, targets[torch.searchsorted(rows, pick)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            losses.append((step, float(loss)))
    log(f"[adapter] {step} steps in {time.monotonic() - start:.0f} s, last loss {float(loss) if step else float('nan'):.4f}", flush=True)
    # Fold the input scaling into the first layer: the served head takes the raw embedding.
    with torch.no_grad():
        head.fc1.weight /= scale
        head.fc2.weight *= scale
        head.fc2.bias *= scale
    return head.eval().cpu(), {"adapterSteps": step, "adapterLoss": losses}


def compose_onnx(base_bytes: bytes, output_name: str, head: AdapterHead) -> tuple[bytes, str]:
    """The imported graph with the head appended: MatMul/Add/Relu nodes on its embedding output."""
    model = onnx.load_from_string(base_bytes)
    graph = model.graph
    original = next(o for o in graph.output if o.name == output_name)
    w1, b1 = head.fc1.weight.detach().numpy().T.astype(np.float32), head.fc1.bias.detach().numpy().astype(np.float32)
    w2, b2 = head.fc2.weight.detach().numpy().T.astype(np.float32), head.fc2.bias.detach().numpy().astype(np.float32)
    p = "adapter_head_"
    graph.initializer.extend(
        [
            numpy_helper.from_array(w1, p + "w1"),
            numpy_helper.from_array(b1, p + "b1"),
            numpy_helper.from_array(w2, p + "w2"),
            numpy_helper.from_array(b2, p + "b2"),
        ]
    )
    new_output = f"{output_name}_adapted"
    graph.node.extend(
        [
            helper.make_node("MatMul", [output_name, p + "w1"], [p + "h1"]),
            helper.make_node("Add", [p + "h1", p + "b1"], [p + "h2"]),
            helper.make_node("Relu", [p + "h2"], [p + "h3"]),
            helper.make_node("MatMul", [p + "h3", p + "w2"], [p + "h4"]),
            helper.make_node("Add", [p + "h4", p + "b2"], [p + "h5"]),
            helper.make_node("Add", [output_name, p + "h5"], [new_output]),
        ]
    )
    value = onnx.ValueInfoProto()
    value.CopyFrom(original)
    value.name = new_output
    graph.output.remove(original)
    graph.output.append(value)
    onnx.checker.check_model(model)
    return model.SerializeToString(), new_output


def run_adapter(cfg, rt, client, bucket, job_id, serving, split, started, deadline, recorder, log) -> dict:
    from .gate import GatePolicy
    from .onnx_module import OnnxEncoderModule
    from .train import _finite, _round, compare_with_serving, logged_decision

    status = onnx2torch_status()
    log(f"[adapter] serving {serving.version} is an ONNX-only import: {status}; training an adapter head on its frozen embeddings", flush=True)
    enc = serving.manifest["encoder"]
    frozen = OnnxEncoderModule(serving.onnx, enc["inputName"], enc["outputName"])
    data = split.data
    spec = serving.input_spec
    views = data.views  # decoded at the frozen encoder's own input spec
    mean, std = list(spec.mean), list(spec.std)
    recorder.update(phase="embedding with the frozen encoder")
    emb = frozen_embeddings(frozen, views, mean, std, rt.device)
    train_set = set(split.train_rows)
    labelled = {row: c for row, c in data.label_of.items() if row in train_set}
    recorder.update(phase="training the adapter head")
    budget = max(5.0, (deadline - time.monotonic()) * 0.6)
    head, stats = train_head(emb, labelled, len(data.class_names), budget, cfg.seed, log, max_steps=cfg.max_steps or 3000)
    candidate = FrozenWithHead(frozen, head)

    recorder.update(phase="evaluation")
    head.to(rt.device)
    new_metrics, new_correct, serving_metrics, serving_correct = compare_with_serving(
        cfg, rt, client, bucket, candidate, spec, serving, data, split.train_rows, split.holdout_rows
    )
    policy = GatePolicy(confidence=cfg.gate_confidence, min_heldout=cfg.gate_min_heldout, seed=cfg.seed, no_lower_estimate=True)
    gate = logged_decision(log, "adapter", serving.version, (new_metrics, new_correct), (serving_metrics, serving_correct), policy)

    head.cpu()
    onnx_bytes, output_name = compose_onnx(serving.onnx, enc["outputName"], head)
    x = torch.randn(3, spec.channels, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    composed = OnnxEncoderModule(onnx_bytes, enc["inputName"], output_name)
    with torch.no_grad():
        parity = float((composed(x) - head(frozen(x))).abs().max())
    if not parity <= 1e-3:
        gate = GateDecision(
            passed=False, reasons=[*gate.reasons, f"composed ONNX differs from the head by {parity:.3g}"], rule=gate.rule, comparisons=gate.comparisons
        )
    metrics = {**new_metrics, **stats, "onnxParityMaxAbsDiff": parity, "serving": {"version": serving.version, **serving_metrics}}
    version = next_version(client, bucket)
    manifest = build_manifest(
        version=version,
        parent=serving.version,
        input_spec=spec,
        architecture={"arch": "adapter-head", "base": serving.version, "hidden": head.fc1.out_features},
        embedding_dim=int(enc["embeddingDim"]),
        metrics=_finite(metrics),
        gate=gate,
        dataset={"snapshot": data.snapshot, "images": len(data), "labels": len(data.label_of)},
        training={"kind": "adapter-head", "path": f"adapter head on frozen {serving.version} ({status})", "jobId": job_id, "gitSha": git_sha()},
        input_name=enc["inputName"],
        output_name=output_name,
    )
    state = publish_gated(client, bucket, version, onnx_bytes, None, manifest, job_id)
    log(f"[adapter] {version} {state}: {'; '.join(gate.reasons)}", flush=True)
    return {"state": state, "version": version, "phase": "done", "gate": gate.to_dict(), "metrics": _finite(_round(new_metrics))}

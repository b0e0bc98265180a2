"""ONNX export with a parity check against PyTorch before anything is published."""

from __future__ import annotations

import io

import numpy as np
import torch

from .manifest import INPUT_NAME, OUTPUT_NAME

PARITY_TOLERANCE = 1e-4
OPSET = 17


class ExportParityError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model within tolerance."""


def export_onnx(model: torch.nn.Module, channels: int, height: int, width: int) -> bytes:
    """Serialise `model` (eval mode, CPU, fp32) to ONNX with a dynamic batch axis."""
    model = model.eval().to("cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
    example = torch.zeros(2, channels, height, width)
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (example,),
        buffer,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    return buffer.getvalue()


def check_parity(model: torch.nn.Module, onnx_bytes: bytes, channels: int, height: int, width: int, seed: int = 0) -> float:
    """Max abs difference between onnxruntime and PyTorch over several batch sizes; raises above tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    model = model.eval().to("cpu", dtype=torch.float32)
    worst = 0.0
    for batch in (1, 3, 8):
        pixels = torch.rand(batch, channels, height, width, generator=generator)
        with torch.no_grad():
            expected = model(pixels).numpy()
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: pixels.numpy()})[0]
        if actual.shape != expected.shape:
            raise ExportParityError(f"ONNX output shape {actual.shape} != PyTorch {expected.shape}")
        worst = max(worst, float(np.max(np.abs(actual - expected))))
    if not np.isfinite(worst) or worst > PARITY_TOLERANCE:
        raise ExportParityError(f"ONNX/PyTorch max abs diff {worst:.3g} exceeds {PARITY_TOLERANCE}")
    return worst

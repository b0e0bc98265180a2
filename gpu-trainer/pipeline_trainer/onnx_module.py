"""An ONNX encoder as a (frozen) torch module: how the trainer evaluates, compares and builds on an
imported encoder that came without PyTorch weights. Inference runs in onnxruntime (CUDA when the
installed onnxruntime has it, else CPU); gradients never flow through it."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch


def onnx_session(onnx_bytes: bytes) -> ort.InferenceSession:
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(onnx_bytes, providers=providers)


class OnnxEncoderModule(torch.nn.Module):
    """x: float [N, C, H, W] (already normalised as the manifest says) -> [N, D] embeddings."""

    def __init__(self, onnx_bytes: bytes, input_name: str | None = None, output_name: str | None = None, batch: int = 64) -> None:
        super().__init__()
        self.session = onnx_session(onnx_bytes)
        self.input_name = input_name or self.session.get_inputs()[0].name
        self.output_name = output_name or self.session.get_outputs()[0].name
        self.batch = batch

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = [
            self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(chunk.detach().float().cpu().numpy())})[0]
            for chunk in x.split(self.batch)
        ]
        return torch.from_numpy(np.concatenate(out).astype(np.float32)).to(x.device)

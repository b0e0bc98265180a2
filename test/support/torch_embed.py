"""PyTorch reference embeddings for the parity test.

usage: torch_embed.py ENDPOINT VERSION PIXELS_NPY OUT_NPY
Loads models/<VERSION>/{manifest.json, encoder.pt} from the artifacts bucket, normalises the
HWC uint8 pixels exactly as the manifest says (independently of the TypeScript code), runs the
PyTorch encoder and writes L2-normalised embeddings.
"""

import json
import sys

import numpy as np
import torch
from pipeline_trainer.model import encoder_from_bytes
from pipeline_trainer.s3io import S3Location, get_bytes, make_client


def main() -> None:
    endpoint, version, pixels_path, out_path = sys.argv[1:5]
    loc = S3Location.from_env(endpoint)
    client = make_client(loc)
    manifest = json.loads(get_bytes(client, loc.artifacts_bucket, f"models/{version}/manifest.json"))
    model = encoder_from_bytes(get_bytes(client, loc.artifacts_bucket, f"models/{version}/encoder.pt")).eval()
    spec = manifest["input"]
    pixels = np.load(pixels_path).astype(np.float64)  # [N, H, W, C]
    mean = np.asarray(spec["mean"], dtype=np.float64)
    std = np.asarray(spec["std"], dtype=np.float64)
    x = (pixels / spec["scale"] - mean) / std
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float()
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model(x), dim=1).numpy()
    np.save(out_path, emb)


if __name__ == "__main__":
    main()

"""`init` end to end against the project's local S3 server, and the manifest against the shared JSON Schema."""

import json

import jsonschema
import numpy as np
import onnxruntime as ort
import torch
from conftest import REPO_ROOT
from pipeline_trainer.__main__ import main
from pipeline_trainer.model import encoder_from_bytes
from pipeline_trainer.s3io import S3Location, get_bytes, get_json, make_client


def schema(name: str) -> dict:
    return json.loads((REPO_ROOT / "schemas" / f"{name}.schema.json").read_text())


def test_init_publishes_v0_and_points_serving_at_it(local_s3):
    assert main(["init", "--seed", "3"]) == 0
    client = make_client(S3Location.from_env())
    pointer = get_json(client, "artifacts", "models/serving.json")
    jsonschema.validate(pointer, schema("model-pointer"))
    assert pointer["version"] == "v0" and pointer["index"] == "emb-v0"

    manifest = get_json(client, "artifacts", "models/v0/manifest.json")
    jsonschema.validate(manifest, schema("model-manifest"))
    assert manifest["parent"] is None
    assert manifest["gate"]["passed"] is True
    assert manifest["input"]["layout"] == "NCHW"

    onnx_bytes = get_bytes(client, "artifacts", "models/v0/encoder.onnx")
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [manifest["encoder"]["inputName"]]
    spec = manifest["input"]
    x = np.random.default_rng(0).random((4, spec["channels"], spec["height"], spec["width"]), dtype=np.float32)
    out = session.run(None, {manifest["encoder"]["inputName"]: x})[0]
    assert out.shape == (4, manifest["encoder"]["embeddingDim"])

    model = encoder_from_bytes(get_bytes(client, "artifacts", "models/v0/encoder.pt")).eval()
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - out).max() < 1e-4


def test_init_is_a_no_op_when_a_serving_model_exists(local_s3):
    assert main(["init"]) == 0
    client = make_client(S3Location.from_env())
    first = get_bytes(client, "artifacts", "models/v0/manifest.json")
    assert main(["init", "--seed", "99"]) == 0
    assert get_bytes(client, "artifacts", "models/v0/manifest.json") == first
    assert get_bytes(client, "artifacts", "models/v1/manifest.json") is None

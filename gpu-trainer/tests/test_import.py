"""Importing an encoder (the job behind POST /models/import), continuing from it with its weights,
and, for an ONNX-only import, the adapter head served as one composed ONNX graph."""

import json
import pathlib

import jsonschema
import pytest
import torch
from conftest import populate_derived
from pipeline_trainer import keys
from pipeline_trainer.config import load_config
from pipeline_trainer.export import export_onnx
from pipeline_trainer.importer import import_job
from pipeline_trainer.init_model import init_model
from pipeline_trainer.manifest import InputSpec
from pipeline_trainer.model import EncoderSpec, build_encoder, encoder_to_bytes
from pipeline_trainer.onnx_module import OnnxEncoderModule
from pipeline_trainer.publish import set_serving
from pipeline_trainer.s3io import S3Location, get_json, make_client
from pipeline_trainer.train import run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO_ROOT / "schemas" / "model-manifest.schema.json").read_text())


def _upload_import(client, import_id: str, *, size: int = 32, weights: bool = False, seed: int = 1) -> torch.nn.Module:
    """What `models import` and POST /models/import leave in the bucket: the ONNX, optional weights, request.json."""
    torch.manual_seed(seed)
    encoder = build_encoder(EncoderSpec(in_channels=3, embedding_dim=48)).eval()
    client.put_object(Bucket="artifacts", Key=f"imports/{import_id}/encoder.onnx", Body=export_onnx(encoder, 3, size, size))
    request = {
        "importId": import_id,
        "source": f"imports/{import_id}/encoder.onnx",
        "input": InputSpec(height=size, width=size).to_dict(),
        "onnx": {"inputName": "pixels", "outputName": "embedding", "embeddingDim": 48, "bytes": 1},
        "validation": {"repeatMaxAbsDiff": 0},
        "requestedAt": "2026-11-28T00:00:00.000Z",
    }
    if weights:
        client.put_object(Bucket="artifacts", Key=f"imports/{import_id}/weights.pt", Body=encoder_to_bytes(encoder))
        request.update(weights=f"imports/{import_id}/weights.pt", arch="small-resnet")
    client.put_object(Bucket="artifacts", Key=keys.import_file(import_id, "request.json"), Body=json.dumps(request).encode())
    return encoder


def _cfg(tmp_path, *extra):
    return load_config(None, [f"cache_dir={tmp_path}", "max_steps=3", "batch_size=32", "finetune=false", "log_every=1", *extra], env={})


def test_an_import_is_gated_on_the_held_out_labels_and_published_as_the_candidate(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    init_model(client, "artifacts")
    populate_derived(client, count=200, labels_per_class=10)
    _upload_import(client, "enc-1", weights=True)
    result = run(_cfg(tmp_path), client, "artifacts", "import-enc-1", work=import_job("enc-1"))
    assert result["state"] in ("published", "rejected") and result["version"] == "v1"
    manifest = get_json(client, "artifacts", keys.manifest("v1"))
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["training"]["kind"] == "import" and "with weights" in manifest["training"]["path"]
    assert manifest["gate"]["rule"].startswith("paired test on 20 held-out labels")
    assert manifest["metrics"]["weightsParity"] < 1e-5
    assert get_json(client, "artifacts", keys.run("import-enc-1"))["state"] == result["state"]
    if result["state"] == "published":
        assert get_json(client, "artifacts", keys.CANDIDATE_POINTER)["version"] == "v1"

    # A run on top of an import with weights continues training them (same arch and size).
    set_serving(client, "artifacts", "v1")
    trained = run(_cfg(tmp_path), client, "artifacts", "train-after-import")
    assert get_json(client, "artifacts", keys.manifest(trained["version"]))["training"]["path"] == "warm start from v1 (imported)"


def test_weights_that_are_not_the_onnx_fail_the_import(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    init_model(client, "artifacts")
    populate_derived(client, count=20, labels_per_class=1)
    _upload_import(client, "enc-2", weights=True)
    torch.manual_seed(99)
    other = build_encoder(EncoderSpec(in_channels=3, embedding_dim=48))
    client.put_object(Bucket="artifacts", Key="imports/enc-2/weights.pt", Body=encoder_to_bytes(other))
    with pytest.raises(Exception, match="do not reproduce the ONNX"):
        run(_cfg(tmp_path), client, "artifacts", "import-enc-2", work=import_job("enc-2"))
    assert get_json(client, "artifacts", keys.run("import-enc-2"))["state"] == "failed"


def test_an_onnx_only_import_is_continued_with_an_adapter_head_served_as_one_graph(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    init_model(client, "artifacts")
    populate_derived(client, count=200, labels_per_class=10)
    _upload_import(client, "enc-3")
    imported = run(_cfg(tmp_path), client, "artifacts", "import-enc-3", work=import_job("enc-3"))
    assert get_json(client, "artifacts", keys.manifest(imported["version"]))["training"]["path"] == "import (ONNX only)"
    set_serving(client, "artifacts", imported["version"])

    result = run(_cfg(tmp_path, "max_steps=200"), client, "artifacts", "adapter-1")
    manifest = get_json(client, "artifacts", keys.manifest(result["version"]))
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["training"]["kind"] == "adapter-head"
    assert "onnx2torch" in manifest["training"]["path"]
    assert manifest["encoder"]["architecture"]["arch"] == "adapter-head"
    assert manifest["metrics"]["onnxParityMaxAbsDiff"] < 1e-3
    assert manifest["gate"]["rule"].startswith("paired test")
    # The composed graph serves through onnxruntime like any version: same input, one 2-D output.
    onnx_bytes = client.get_object(Bucket="artifacts", Key=keys.model_file(result["version"], "encoder.onnx"))["Body"].read()
    module = OnnxEncoderModule(onnx_bytes, manifest["encoder"]["inputName"], manifest["encoder"]["outputName"])
    assert module(torch.rand(2, 3, 32, 32)).shape == (2, 48)
    assert client.list_objects_v2(Bucket="artifacts", Prefix=keys.model_file(result["version"], "encoder.pt")).get("KeyCount") == 0

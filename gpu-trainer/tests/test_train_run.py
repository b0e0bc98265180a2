"""A tiny training run end to end against the project's local S3 server."""

import json

import jsonschema
import pytest
import torch
from conftest import REPO_ROOT, populate_derived
from pipeline_trainer.__main__ import main
from pipeline_trainer.config import load_config
from pipeline_trainer.manifest import InputSpec
from pipeline_trainer.model import Encoder, EncoderSpec, ProjectionHead
from pipeline_trainer.optim import make_optimizer
from pipeline_trainer.runtime import History, Runtime, SimCLRNet
from pipeline_trainer.s3io import S3Location, get_bytes, get_json, make_client
from pipeline_trainer.train import pretrain, save_checkpoint


def schema(name: str) -> dict:
    return json.loads((REPO_ROOT / "schemas" / f"{name}.schema.json").read_text())


class NullRecorder:
    def update(self, **_):
        pass


def test_a_run_publishes_a_gated_version_with_report_run_record_and_pseudo_labels(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=160, labels_per_class=5)
    assert main(["init"]) == 0
    args = [
        "run",
        "--job-id",
        "tiny-1",
        "--max-minutes",
        "1",
        "--set",
        f"cache_dir={tmp_path}",
        "--set",
        "max_steps=5",
        "--set",
        "batch_size=32",
        "--set",
        "finetune_share=0.05",
        "--set",
        "log_every=1",
    ]
    assert main(args) == 0

    run = get_json(client, "artifacts", "runs/tiny-1.json")
    jsonschema.validate(run, schema("training-run"))
    assert run["state"] in ("published", "rejected") and run["version"] == "v1"
    manifest = get_json(client, "artifacts", "models/v1/manifest.json")
    jsonschema.validate(manifest, schema("model-manifest"))
    assert manifest["parent"] == "v0"
    assert manifest["gate"]["passed"] == (run["state"] == "published")
    assert manifest["metrics"]["trainSteps"] == 5
    assert manifest["metrics"]["serving"]["version"] == "v0"
    assert manifest["dataset"]["images"] == 160 and manifest["dataset"]["labels"] == 50
    assert manifest["training"]["config"]["max_steps"] == 5
    for key in ("knnAccuracy", "linearProbeAccuracy", "pseudoLabelCoverage", "onnxParityMaxAbsDiff"):
        assert key in manifest["metrics"]
    assert get_bytes(client, "artifacts", "models/v1/curves.png")[:8] == b"\x89PNG\r\n\x1a\n"
    report = get_json(client, "artifacts", "models/v1/report.json")
    jsonschema.validate(report, schema("model-report"))
    assert report["history"]["loss"]
    # log_every=1: held-out kNN every 5 steps, so one point at step 5.
    [(step, accuracy)] = report["history"]["accuracy"]["held-out kNN"]
    assert step == 5 and 0.0 <= accuracy <= 1.0
    assert get_bytes(client, "artifacts", "models/v1/encoder.onnx")
    if run["state"] == "published":
        jsonschema.validate(get_json(client, "artifacts", "pseudo-labels/v1/pseudo-labels.json"), schema("pseudo-labels"))
        assert get_json(client, "artifacts", "models/candidate.json")["version"] == "v1"
    else:
        assert get_json(client, "artifacts", "models/candidate.json") is None
    assert get_json(client, "artifacts", "models/serving.json")["version"] == "v0"


def test_pretraining_resumes_from_its_checkpoint(tmp_path):
    cfg = load_config(None, [f"cache_dir={tmp_path}", "max_steps=3", "batch_size=8", "log_every=1", "checkpoint_every=1"], env={})
    net = SimCLRNet(Encoder(EncoderSpec(width=8)), ProjectionHead(128, 64, 16))
    views = torch.randint(0, 256, (16, 2, 32, 32, 3), dtype=torch.uint8)
    opt = make_optimizer("adamw", net.parameters(), 1e-3, 0.0)
    save_checkpoint(tmp_path / "checkpoints" / "job-r.pt", net, opt, step=2, elapsed=1.0, cfg=cfg)
    history = History()
    stats = pretrain(cfg, Runtime(device=torch.device("cpu")), net, views, InputSpec(), 60.0, history, "job-r", NullRecorder(), lambda *a, **k: None)
    assert stats["steps"] == 3
    assert [s for s, _ in history.loss] == [3]
    assert not (tmp_path / "checkpoints" / "job-r.pt").exists()


@pytest.mark.parametrize("backbone", [{}, {"preset": "gpu-vits16-224", "input_size": 32}], ids=["small-resnet", "vit-s16"])
def test_torchrun_ranks_with_different_clocks_finish_pretraining_fine_tune_and_export(local_s3, tmp_path, backbone):
    """DDP on CPU, two ranks whose clocks disagree: rank 1's runs three times fast, so by its own
    budget it would leave pretraining mid-epoch, long before rank 0, and rank 0 would wait in the
    NT-Xent all_gather forever. Rank 0's clock decides for both; rank 0 then fine-tunes, evaluates
    and exports alone, with no collective left."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    client = make_client(S3Location.from_env())
    populate_derived(client, count=96, labels_per_class=3)
    assert main(["init"]) == 0
    skew = tmp_path / "skew"
    skew.mkdir()
    (skew / "sitecustomize.py").write_text(
        "import os, time\n"
        "if os.environ.get('RANK') == '1':\n"
        "    _real = time.monotonic\n"
        "    _t0 = _real()\n"
        "    time.monotonic = lambda: _t0 + (_real() - _t0) * 3.0\n"
    )
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": f"{skew}:{REPO_ROOT / 'gpu-trainer'}", "OMP_NUM_THREADS": "1"}
    sets = {
        **backbone,
        "cache_dir": tmp_path,
        "batch_size": 16,
        "finetune": "true",
        "log_every": 1,
        "pretrain_share": 0.6,
        "finetune_share": 0.2,
        "checkpoint_every": 0,
    }
    args = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "pipeline_trainer", "run", "--job-id", "ddp-1", "--max-minutes", "0.5"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    run = get_json(client, "artifacts", "runs/ddp-1.json")
    assert run["state"] in ("published", "rejected"), run
    manifest = get_json(client, "artifacts", f"models/{run['version']}/manifest.json")
    assert manifest["training"]["worldSize"] == 2 and manifest["metrics"]["trainSteps"] > 1
    assert manifest["metrics"]["onnxParityMaxAbsDiff"] <= 1e-4
    assert "[finetune]" in out and "pretraining done" in out
    if backbone:
        assert manifest["encoder"]["architecture"]["arch"] == "vit-s16" and manifest["input"]["height"] == 32


def test_mean_over_ranks_and_sync_batchnorm_revert():
    import torch
    from pipeline_trainer.model import Encoder, EncoderSpec
    from pipeline_trainer.runtime import Runtime, any_rank, mean_over_ranks, rank0_value, revert_sync_batchnorm

    single = Runtime(device=torch.device("cpu"))
    assert rank0_value(single, 0.25) == 0.25 and any_rank(single, True) and mean_over_ranks(single, torch.tensor(1.5)) == 1.5
    enc = Encoder(EncoderSpec(3, 8, (1, 1), 2, 16))
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(enc)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    plain = revert_sync_batchnorm(synced)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in plain.modules())
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
    plain.train()
    plain(torch.rand(4, 3, 16, 16))  # a training-mode forward without a process group works again

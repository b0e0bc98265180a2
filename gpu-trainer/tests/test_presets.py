"""Every preset: its backbone trains a few SimCLR steps on CPU (on views stored at another size,
resized to the preset's input), exports to ONNX and passes the parity check; presets sit under
explicit keys; a run with a preset of another architecture and size publishes a version whose
manifest carries them."""

import dataclasses

import pytest
import torch
from conftest import populate_derived
from pipeline_trainer.__main__ import main
from pipeline_trainer.config import PRESETS, ConfigError, load_config
from pipeline_trainer.export import check_parity, export_onnx
from pipeline_trainer.manifest import InputSpec
from pipeline_trainer.model import FitInput, ProjectionHead, build_encoder, encoder_from_bytes, encoder_spec, encoder_to_bytes
from pipeline_trainer.runtime import History, Runtime, SimCLRNet
from pipeline_trainer.s3io import S3Location, get_bytes, get_json, make_client
from pipeline_trainer.train import pretrain


class NullRecorder:
    def update(self, **_):
        pass


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_trains_exports_and_passes_parity(name, tmp_path):
    cfg = load_config(None, [f"cache_dir={tmp_path}", "max_steps=2", "batch_size=4", "log_every=1", "checkpoint_every=0"], env={}, preset=name)
    size = cfg.input_size
    torch.manual_seed(0)
    inner = build_encoder(encoder_spec(cfg.arch, 3, cfg.embedding_dim, (size, size)))
    encoder = FitInput(inner, (size, size))
    net = SimCLRNet(encoder, ProjectionHead(cfg.embedding_dim, 2 * cfg.embedding_dim, cfg.projection_dim))
    views = torch.randint(0, 256, (8, 2, 32, 32, 3), dtype=torch.uint8)  # stored at 32x32, as today's derived data
    spec = dataclasses.replace(InputSpec(), height=size, width=size)
    stats = pretrain(cfg, Runtime(device=torch.device("cpu")), net, views, spec, 600.0, History(), f"preset-{name}", NullRecorder(), lambda *a, **k: None)
    assert stats["steps"] == 2
    onnx_bytes = export_onnx(inner, 3, size, size)
    assert check_parity(inner, onnx_bytes, 3, size, size) <= 1e-4
    again = encoder_from_bytes(encoder_to_bytes(inner))
    assert again.spec == inner.spec and type(again) is type(inner)


def test_the_preset_names_are_the_deployment_s():
    import json

    from conftest import REPO_ROOT

    doc = json.loads((REPO_ROOT / "schemas" / "trainer-presets.json").read_text())
    assert sorted(doc["presets"]) == sorted(PRESETS) and doc["defaultGpu"] in PRESETS


def test_presets_sit_under_explicit_keys():
    cfg = load_config(None, ["batch_size=64"], env={"TRAINER_PRESET": "gpu-resnet18-128", "TRAINER_LR": "0.01"})
    assert (cfg.preset, cfg.arch, cfg.input_size) == ("gpu-resnet18-128", "resnet18", 128)
    assert cfg.batch_size == 64 and cfg.lr == 0.01
    assert load_config(None, [], env={}, preset="cpu-small").arch == "small-resnet"
    with pytest.raises(ConfigError, match="unknown preset 'gpu-huge'"):
        load_config(None, [], env={"TRAINER_PRESET": "gpu-huge"})
    with pytest.raises(ConfigError, match="small-resnet is for inputs of at most 64"):
        load_config(None, ["arch=small-resnet", "input_size=128"], env={})
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_config(None, ["input_size=100"], env={}, preset="gpu-vits16-224")


def test_a_run_with_a_preset_of_another_arch_and_size_publishes_it_in_the_manifest(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=64, labels_per_class=3)
    assert main(["init"]) == 0
    sets = [f"cache_dir={tmp_path}", "max_steps=2", "batch_size=8", "finetune=false", "input_size=64", "embedding_dim=32"]
    args = ["run", "--job-id", "preset-1", "--max-minutes", "1", "--preset", "gpu-resnet18-128"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    run = get_json(client, "artifacts", "runs/preset-1.json")
    manifest = get_json(client, "artifacts", f"models/{run['version']}/manifest.json")
    assert manifest["input"]["height"] == 64 and manifest["input"]["width"] == 64
    assert manifest["encoder"]["architecture"]["arch"] == "resnet18"
    assert manifest["training"]["config"]["preset"] == "gpu-resnet18-128"
    assert manifest["metrics"]["serving"]["version"] == "v0"  # compared with the 32x32 small ResNet at its own size
    model = encoder_from_bytes(get_bytes(client, "artifacts", f"models/{run['version']}/encoder.pt"))
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 32)

import numpy as np
import pytest
import torch
from pipeline_trainer.export import PARITY_TOLERANCE, ExportParityError, check_parity, export_onnx
from pipeline_trainer.model import Encoder, EncoderSpec, encoder_from_bytes, encoder_to_bytes


def test_encoder_maps_images_to_embedding_dim():
    model = Encoder(EncoderSpec(width=8, embedding_dim=16)).eval()
    assert model(torch.rand(5, 3, 32, 32)).shape == (5, 16)
    assert model(torch.rand(2, 3, 48, 40)).shape == (2, 16)


def test_published_weights_round_trip_exactly():
    torch.manual_seed(1)
    model = Encoder(EncoderSpec(width=8, embedding_dim=16)).eval()
    again = encoder_from_bytes(encoder_to_bytes(model)).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.spec == model.spec


def test_onnx_export_matches_pytorch_on_dynamic_batches():
    model = Encoder(EncoderSpec(width=8, embedding_dim=16)).eval()
    onnx_bytes = export_onnx(model, 3, 32, 32)
    assert check_parity(model, onnx_bytes, 3, 32, 32) <= PARITY_TOLERANCE


def test_parity_check_rejects_a_graph_that_differs():
    torch.manual_seed(0)
    model = Encoder(EncoderSpec(width=8, embedding_dim=16)).eval()
    onnx_bytes = export_onnx(model, 3, 32, 32)
    with torch.no_grad():
        model.embed.bias.add_(1.0)
    with pytest.raises(ExportParityError, match="exceeds"):
        check_parity(model, onnx_bytes, 3, 32, 32)


def test_spec_round_trips_through_dict():
    spec = EncoderSpec(in_channels=1, width=16, blocks_per_stage=(2, 1), pooled_grid=2, embedding_dim=32)
    assert EncoderSpec.from_dict(spec.to_dict()) == spec
    assert np.isfinite(Encoder(spec)(torch.rand(1, 1, 32, 32)).detach().numpy()).all()

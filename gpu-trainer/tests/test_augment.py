import pytest
import torch
from pipeline_trainer.augment import color_jitter, gaussian_blur, horizontal_flip, normalize, random_grayscale, random_resized_crop, simclr_view, to_unit_float

AUG = dict(crop_scale_min=0.3, jitter_strength=0.4, grayscale_p=0.2, blur_p=0.5)


def batch(n=16, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)


def test_views_keep_shape_and_range():
    x = to_unit_float(batch())
    assert x.shape == (16, 3, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    for fn in (random_resized_crop, horizontal_flip, color_jitter, random_grayscale, gaussian_blur):
        y = fn(x, torch.Generator().manual_seed(1))
        assert y.shape == x.shape
        assert float(y.min()) >= -1e-6 and float(y.max()) <= 1 + 1e-6
    y = simclr_view(x, torch.Generator().manual_seed(1), **AUG)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_same_seed_same_views_other_seed_other_views():
    x = to_unit_float(batch())
    a = simclr_view(x, torch.Generator().manual_seed(5), **AUG)
    b = simclr_view(x, torch.Generator().manual_seed(5), **AUG)
    c = simclr_view(x, torch.Generator().manual_seed(6), **AUG)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_each_image_gets_its_own_parameters():
    x = to_unit_float(batch(1)).repeat(32, 1, 1, 1)
    y = simclr_view(x, torch.Generator().manual_seed(0), **AUG)
    assert len({tuple(v.flatten()[:50].tolist()) for v in y}) > 20


def test_a_full_crop_without_jitter_is_the_identity_and_flip_mirrors():
    x = to_unit_float(batch(4))
    full = random_resized_crop(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(full, x, atol=1e-5, rtol=0)
    flipped = horizontal_flip(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.equal(flipped, x.flip(-1))


def test_grayscale_has_equal_channels_and_blur_keeps_constant_images():
    x = to_unit_float(batch(4))
    g = random_grayscale(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    constant = torch.full((3, 3, 16, 16), 0.25)
    torch.testing.assert_close(gaussian_blur(constant, torch.Generator().manual_seed(0), p=1.0), constant)


@pytest.mark.parametrize("mean,std", [([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]), ([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])])
def test_normalize_matches_the_manifest_formula(mean, std):
    x = to_unit_float(batch(2))
    y = normalize(x, mean, std)
    for c in range(3):
        torch.testing.assert_close(y[:, c], (x[:, c] - mean[c]) / std[c])

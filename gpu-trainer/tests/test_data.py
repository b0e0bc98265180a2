"""Derived images are read at the model's own input size, from either layout, and a model larger
than the stored resolution is refused instead of being fed upsampled pixels."""

import json
import pathlib

import jsonschema
import numpy as np
import pytest
from conftest import populate_derived
from PIL import Image
from pipeline_trainer.data import LoadSpec, ResolutionError, fit_image, load_dataset
from pipeline_trainer.s3io import S3Location, make_client

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_layout_2_is_decoded_at_the_models_size_and_its_meta_is_the_typescript_schema(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=12, labels_per_class=1, views=3)
    data = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(64, 64, 3), log=lambda *a, **k: None)
    assert data.views.shape == (12, 3, 64, 64, 3)
    assert data.working_size == 256
    schema = json.loads((REPO_ROOT / "schemas" / "derived-meta.schema.json").read_text())
    meta_key = next(k["Key"] for k in client.list_objects_v2(Bucket="artifacts", Prefix="derived/")["Contents"] if k["Key"].endswith("meta.json"))
    jsonschema.validate(json.loads(client.get_object(Bucket="artifacts", Key=meta_key)["Body"].read()), schema)
    # The views come out of the strip whole: each is the canonical image shifted (as written), not a neighbour's pixels.
    gray = data.views[0, :, :, :, 0].astype(np.int16)
    assert np.abs(gray[1] - np.roll(gray[0], 2, axis=1)).mean() < 12


def test_layout_1_still_reads_at_its_size_and_a_larger_model_is_refused(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=8, labels_per_class=1, views=3, layout=1)
    data = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(32, 32, 3), log=lambda *a, **k: None)
    assert data.views.shape == (8, 3, 32, 32, 3)
    with pytest.raises(ResolutionError, match=r"input is 64x64 but 8 of 8 images are stored at 32 px"):
        load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(64, 64, 3), log=lambda *a, **k: None)


def test_a_working_resolution_below_the_model_is_refused(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=4, labels_per_class=1, views=2, working_size=48)
    with pytest.raises(ResolutionError, match="stored at 48 px"):
        load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(64, 64, 3), log=lambda *a, **k: None)


@pytest.mark.parametrize(
    ("fit", "expected_white_rows"),
    [("contain", True), ("cover", False), ("fill", False)],
)
def test_fit_rules_follow_sharp(fit, expected_white_rows):
    img = Image.fromarray(np.zeros((50, 100, 3), np.uint8))  # 100 wide, 50 high, black
    out = fit_image(img, LoadSpec(32, 32, 3, fit))
    assert out.shape == (32, 32, 3)
    # contain letterboxes on white (sharp's background '#ffffff'); cover crops the centre; fill stretches.
    assert bool((out[0] == 255).all()) is expected_white_rows
    assert (out[16] == 0).all()


def test_grey_models_get_one_channel():
    img = Image.fromarray(np.full((40, 40, 3), 200, np.uint8))
    out = fit_image(img, LoadSpec(16, 16, 1, "cover"))
    assert out.shape == (16, 16, 1) and int(out[8, 8, 0]) == 200


def test_a_second_load_reads_only_what_changed(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=10, labels_per_class=1, views=3)
    gets: list[str] = []
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    quiet = {"log": lambda *a, **k: None}
    first = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(32, 32, 3), **quiet)
    assert sum(k.endswith("/meta.json") for k in gets) == 10
    gets.clear()
    second = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(32, 32, 3), **quiet)
    # Unchanged images cost no request: the listing's ETags say they are the cached ones.
    assert [k for k in gets if k.startswith("derived/")] == []
    np.testing.assert_array_equal(second.views[:], first.views[:])
    assert second.image_ids == first.image_ids and second.snapshot == first.snapshot
    # A rewritten meta (augment rewrites it last whenever the image changes) is read and decoded again.
    meta_key = next(k["Key"] for k in client.list_objects_v2(Bucket="artifacts", Prefix="derived/")["Contents"] if k["Key"].endswith("meta.json"))
    meta = json.loads(client.get_object(Bucket="artifacts", Key=meta_key)["Body"].read())
    client.put_object(Bucket="artifacts", Key=meta_key, Body=json.dumps({**meta, "etag": "changed"}).encode())
    gets.clear()
    third = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(32, 32, 3), **quiet)
    assert [k for k in gets if k.endswith("/meta.json")] == [meta_key]
    assert third.snapshot != first.snapshot

"""Derived images are read at the model's own input size, from either layout, and a model larger
than the stored resolution is refused instead of being fed upsampled pixels."""

import json
import os
import pathlib
import time

import jsonschema
import numpy as np
import pytest
from conftest import populate_derived
from PIL import Image
from pipeline_trainer.data import LoadSpec, ResolutionError, fit_image, load_dataset, prune_cache
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


def _entry(cache: pathlib.Path, stem: str, size: int, age_s: float, now: float) -> None:
    for ext, n in (("json", 100), ("npy", size)):
        path = cache / f"{stem}.{ext}"
        path.write_bytes(b"x" * n)
        os.utime(path, (now - age_s, now - age_s))


def test_the_decode_cache_is_pruned_least_recently_used_first(tmp_path):
    now = time.time()
    for i in range(6):  # stale entries, last used 2..7 hours ago
        _entry(tmp_path, f"old{i}", 1000, (2 + i) * 3600, now)
    _entry(tmp_path, "recent", 1000, 60, now)  # another run used it a minute ago
    _entry(tmp_path, "mine", 5000, 5 * 3600, now)  # the pruning load's own (old on disk, but in use)
    (tmp_path / "old0.npy.123.456.tmp").write_bytes(b"x" * 10)  # an interrupted write, two hours old
    os.utime(tmp_path / "old0.npy.123.456.tmp", (now - 7200, now - 7200))
    (tmp_path / "new.npy.123.789.tmp").write_bytes(b"x" * 10)  # a write in progress
    # Room for what is kept anyway (mine, recent) plus two stale entries: the two most recently used stay.
    kept = prune_cache(tmp_path, 5100 + 1100 + 2 * 1100, {"mine"}, now=now)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{s}.{e}" for s in ("old0", "old1", "recent", "mine") for e in ("json", "npy")] + ["new.npy.123.789.tmp"]
    )
    assert kept == {"bytes": 5100 + 3 * 1100, "entries": 4, "removed": 4, "removedBytes": 4 * 1100}
    # A limit below what must be kept removes every other stale entry and nothing else.
    assert prune_cache(tmp_path, 0, {"mine"}, now=now)["entries"] == 2


def test_a_load_prunes_the_cache_and_keeps_what_it_used(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=6, labels_per_class=1, views=2)
    quiet = {"log": lambda *a, **k: None}
    load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(32, 32, 3), **quiet)
    cache = tmp_path / "derived"
    at_32 = sorted(p.name for p in cache.iterdir())
    assert len(at_32) == 12
    # An hour and more later, a load at another input size with no room to spare: the 32 px entries go.
    old = time.time() - 2 * 3600
    for p in cache.iterdir():
        os.utime(p, (old, old))
    first = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(16, 16, 3), cache_max_bytes=0, **quiet)
    at_16 = sorted(p.name for p in cache.iterdir())
    assert len(at_16) == 12 and not set(at_16) & set(at_32)
    # Its own entries are kept (and read from the cache by the next load), even when old and over the limit.
    for p in cache.iterdir():
        os.utime(p, (old, old))
    again = load_dataset(client, "artifacts", str(tmp_path), spec=LoadSpec(16, 16, 3), cache_max_bytes=0, **quiet)
    assert sorted(p.name for p in cache.iterdir()) == at_16
    np.testing.assert_array_equal(again.views[:], first.views[:])
    # ... and a hit counts as a use: the records were touched.
    assert all(time.time() - p.stat().st_mtime < 600 for p in cache.glob("*.json"))

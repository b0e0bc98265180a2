"""Training data on local disk: rows read on demand, a corpus never held in memory, steps read ahead."""

import os
import threading
import time
import tracemalloc

import numpy as np
import pytest
import torch
from conftest import populate_derived
from pipeline_trainer.config import TrainConfig
from pipeline_trainer.data import LoadSpec, load_dataset
from pipeline_trainer.manifest import InputSpec
from pipeline_trainer.model import ProjectionHead, build_encoder, encoder_spec
from pipeline_trainer.runtime import History, Runtime, SimCLRNet
from pipeline_trainer.s3io import S3Location, make_client
from pipeline_trainer.store import ArrayViews, DiskViews, PrefetchedBatches
from pipeline_trainer.train import pretrain


def _filled(tmp_path, n=50, shape=(3, 8, 8, 3)):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    store = DiskViews(tmp_path / "stores", n, shape)
    for i in range(n):
        store.write(i, arr[i])
    return arr, store


def test_disk_rows_read_back_like_the_array_they_were_written_from(tmp_path):
    arr, store = _filled(tmp_path)
    assert store.shape == arr.shape and len(store) == 50 and store.nbytes == arr.nbytes
    # The file is unlinked at once: nothing is left behind, whatever happens to the process.
    assert os.listdir(tmp_path / "stores") == []
    rows = np.array([7, 3, 4, 5, 49, 0, 0])
    np.testing.assert_array_equal(store[rows], arr[rows])
    np.testing.assert_array_equal(store[10:20], arr[10:20])
    np.testing.assert_array_equal(store[::7], arr[::7])
    np.testing.assert_array_equal(store[-1], arr[-1])
    np.testing.assert_array_equal(store[rows, 0], arr[rows, 0])
    np.testing.assert_array_equal(store[2, :, 1:3], arr[2, :, 1:3])
    np.testing.assert_array_equal(store[torch.tensor([1, 2])], arr[[1, 2]])
    mask = np.zeros(50, bool)
    mask[[4, 9]] = True
    np.testing.assert_array_equal(store[mask], arr[mask])
    np.testing.assert_array_equal(store.canonical[5:9], arr[5:9, 0])
    np.testing.assert_array_equal(store.canonical[3], arr[3, 0])
    assert store.canonical.shape == (50, 8, 8, 3)
    sub = store.subset([9, 2, 30])
    np.testing.assert_array_equal(sub[:], arr[[9, 2, 30]])
    np.testing.assert_array_equal(sub.canonical[[2, 0]], arr[[30, 9], 0])
    with pytest.raises(IndexError):
        store[[50]]
    with pytest.raises(ValueError, match="shape"):
        store.write(0, np.zeros((3, 8, 8, 1), np.uint8))


def test_array_views_answer_the_same(tmp_path):
    arr, store = _filled(tmp_path, n=20)
    mem = ArrayViews(arr)
    for key in (np.array([3, 1, 19]), slice(2, 9), 4):
        np.testing.assert_array_equal(mem[key], store[key])


def test_prefetch_reads_each_steps_rows_in_order_and_hands_on_errors(tmp_path):
    arr, store = _filled(tmp_path)
    plan = [np.array([5, 1, 9]), np.array([0, 2]), np.array([44, 43])]
    calls = iter(range(100))

    def next_rows():
        i = next(calls)
        if i >= len(plan):
            raise RuntimeError("no more rows")
        return plan[i]

    batches = PrefetchedBatches(store, next_rows, torch.device("cpu"), depth=2)
    try:
        for rows in plan:
            # Rows come sorted (one read per run of neighbours): a SimCLR step does not care about order.
            np.testing.assert_array_equal(batches.next().numpy(), arr[np.sort(rows)])
        with pytest.raises(RuntimeError, match="no more rows"):
            batches.next()
    finally:
        batches.close()
    assert batches.wait_seconds >= 0


def test_prefetch_stops_its_thread_on_close(tmp_path):
    _arr, store = _filled(tmp_path)
    batches = PrefetchedBatches(store, lambda: np.array([1, 2, 3]), torch.device("cpu"), depth=2)
    time.sleep(0.2)  # the queue is full and the producer waits
    batches.close()
    assert not batches.thread.is_alive()
    assert all(t.name != "prefetch" or not t.is_alive() for t in threading.enumerate())


def test_pretraining_streams_from_disk_and_reports_its_wait_for_data(tmp_path):
    arr, store = _filled(tmp_path, n=64, shape=(3, 32, 32, 3))
    cfg = TrainConfig(batch_size=16, max_steps=4, cache_dir=str(tmp_path), log_every=1)
    encoder = build_encoder(encoder_spec("small-resnet", 3, 32, (32, 32), {"width": 8, "blocks_per_stage": (1, 1, 1), "pooled_grid": 1}))
    net = SimCLRNet(encoder, ProjectionHead(32, 64, 16))
    history = History()

    class Recorder:
        def update(self, **_):
            pass

    stats = pretrain(cfg, Runtime(device=torch.device("cpu")), net, store, InputSpec(), 60.0, history, "store-job", Recorder(), lambda *a, **k: None)
    assert stats["steps"] == 4 and stats["images_per_second"] > 0
    assert 0.0 <= stats["data_wait_share"] < 1.0
    assert all(np.isfinite(loss) for _step, loss in history.loss)
    # The same data resident as a tensor (the in-memory path) trains the same way.
    stats = pretrain(cfg, Runtime(device=torch.device("cpu")), net, torch.from_numpy(arr), InputSpec(), 60.0, History(), "mem-job", Recorder(), print)
    assert stats["steps"] == 4 and stats["data_wait_share"] == 0.0


def test_loading_a_corpus_never_holds_it_in_memory(local_s3, tmp_path):
    client = make_client(S3Location.from_env())
    populate_derived(client, count=240, labels_per_class=2, views=3)
    client.list_objects_v2(Bucket="artifacts", MaxKeys=1)  # the client's own setup is not the loader's
    spec = LoadSpec(64, 64, 3)
    tracemalloc.start()
    try:
        data = load_dataset(client, "artifacts", str(tmp_path), spec=spec, log=lambda *a, **k: None, workers=4, check_resolution=False)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(data.views, DiskViews)
    corpus = data.views.nbytes  # 240 images x 3 views x 64 x 64 x 3 = 8.8 MB
    assert corpus == 240 * 3 * 64 * 64 * 3
    assert peak < corpus / 4, f"loading peaked at {peak} bytes for a {corpus}-byte corpus"
    # And the rows are the images: view 1 is the canonical image shifted by one pixel, as populated.
    gray = data.views[0, :, :, :, 0].astype(np.int16)
    assert np.abs(gray[1] - np.roll(gray[0], 2, axis=1)).mean() < 12

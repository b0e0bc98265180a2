"""The training data: canonical images and Lambda-made views from `derived/`, human labels from `labels/`.

Reads run in parallel threads and views are cached on local disk by image id and ETag, so a
second run (or a resumed one) reads only what changed. A fixed, seeded, per-class share of the
human-labelled images is held out for evaluation and never trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import keys as artifact_keys
from .s3io import get_bytes, list_keys


@dataclass
class Dataset:
    image_ids: list[str]
    keys: list[str]
    views: np.ndarray  # uint8 [N, V, H, W, C]; V = 1 + K, index 0 the canonical image
    label_of: dict[int, int]  # row -> class index, for human-labelled rows
    class_names: list[str]
    snapshot: str

    @property
    def canonical(self) -> np.ndarray:
        return self.views[:, 0]

    def __len__(self) -> int:
        return len(self.image_ids)


def _read_view(client, bucket: str, meta_key: str, cache: Path):
    meta = json.loads(get_bytes(client, bucket, meta_key) or b"null")
    if not meta:
        return None
    cached = cache / f"{meta['imageId']}-{hashlib.sha1(meta['etag'].encode()).hexdigest()[:12]}.npy"
    if cached.exists():
        arr = np.load(cached)
    else:
        body = get_bytes(client, bucket, artifact_keys.derived_views(meta["imageId"]))
        if body is None:
            return None
        arr = np.load(io.BytesIO(body))
        # Unique per writer: ranks of a torchrun job fill the same cache at the same time.
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
        os.replace(tmp, cached)
    return meta, arr


def load_dataset(client, bucket: str, cache_dir: str, workers: int = 16, view_shape: tuple[int, int, int] | None = None, log=print) -> Dataset:
    """Every derived image with its views, and the human labels. `view_shape` is (height, width, channels) of the views to
    load; by default the shape most images have (a model change may leave older views at another size)."""
    cache = Path(cache_dir) / "views"
    cache.mkdir(parents=True, exist_ok=True)
    meta_keys = [k for k in list_keys(client, bucket, artifact_keys.PREFIXES["derived"]) if k.endswith("/meta.json")]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded = [r for r in pool.map(lambda k: _read_view(client, bucket, k, cache), meta_keys) if r is not None]
    if not loaded:
        raise RuntimeError("no derived images in the artifacts bucket yet: upload images and let augment run first")
    # Keep the images whose views have the current canonical size, with the smallest common view count.
    wanted = view_shape or max({a.shape[1:] for _, a in loaded}, key=lambda s: sum(1 for _, a in loaded if a.shape[1:] == s))
    kept = [(m, a) for m, a in loaded if a.shape[1:] == tuple(wanted)]
    views_per_image = min(a.shape[0] for _, a in kept)
    kept.sort(key=lambda ma: ma[0]["imageId"])
    if len(kept) < len(loaded):
        log(f"[data] skipped {len(loaded) - len(kept)} images whose views are not {tuple(wanted)}")
    views = np.stack([a[:views_per_image] for _, a in kept])
    image_ids = [m["imageId"] for m, _ in kept]
    keys = [m["key"] for m, _ in kept]

    label_keys = list_keys(client, bucket, artifact_keys.LABELS_PREFIX)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        label_docs = list(pool.map(lambda k: json.loads(get_bytes(client, bucket, k) or b"null"), label_keys))
    row_of = {image_id: i for i, image_id in enumerate(image_ids)}
    raw_labels = {}
    for key, doc in zip(label_keys, label_docs, strict=True):
        image_id = artifact_keys.image_id_of_label(key)
        if doc and image_id in row_of:
            raw_labels[row_of[image_id]] = doc["label"]
    class_names = sorted(set(raw_labels.values()))
    class_index = {name: i for i, name in enumerate(class_names)}
    label_of = {row: class_index[name] for row, name in raw_labels.items()}

    digest = hashlib.sha256()
    for m, _ in kept:
        digest.update(f"{m['imageId']}:{m['etag']}\n".encode())
    for row in sorted(raw_labels):
        digest.update(f"{image_ids[row]}={raw_labels[row]}\n".encode())
    snapshot = digest.hexdigest()[:16]
    log(
        f"[data] {len(image_ids)} images x {views_per_image} views {tuple(wanted)}, "
        f"{len(label_of)} human labels in {len(class_names)} classes, snapshot {snapshot}"
    )
    return Dataset(image_ids=image_ids, keys=keys, views=views, label_of=label_of, class_names=class_names, snapshot=snapshot)


def holdout_split(label_of: dict[int, int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train rows, held-out rows) of the labelled rows: per class, a seeded `fraction` (at least one
    where the class has two or more labels) is held out."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for row, c in sorted(label_of.items()):
        by_class.setdefault(c, []).append(row)
    train, held = [], []
    for c in sorted(by_class):
        rows = list(by_class[c])
        rng.shuffle(rows)
        n_hold = int(round(len(rows) * fraction))
        if fraction > 0 and len(rows) >= 2:
            n_hold = max(1, min(n_hold, len(rows) - 1))
        held.extend(rows[:n_hold])
        train.extend(rows[n_hold:])
    return sorted(train), sorted(held)

"""The training data: canonical images and Lambda-made views from `derived/`, human labels from `labels/`.

Derived images are stored independently of any model (canonical.png at the working resolution,
views.jpg; shared/derived-layout.ts); each is decoded here at the model's own input size, with the
model's resize rule. Reads run in parallel threads and decoded arrays are cached on local disk by
image id, the meta's ETag and size, so a second run (or a resumed one) reads only what changed; after
each load the cache is pruned to its size limit, least recently used entries first (`prune_cache`). The run reads
its rows from one file on local disk (store.py), so its memory does not grow with the corpus. A fixed, seeded, per-class share of the
human-labelled images is held out for evaluation and never trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import keys as artifact_keys
from .s3io import get_bytes, list_keys, list_objects
from .store import DiskViews, ViewColumn, Views


@dataclass
class Dataset:
    image_ids: list[str]
    keys: list[str]
    views: Views  # uint8 [N, V, H, W, C] at the model's input size, on local disk (store.py); V = 1 + K, index 0 the canonical image
    label_of: dict[int, int]  # row -> class index, for human-labelled rows
    class_names: list[str]
    snapshot: str
    working_size: int = 0  # the working resolution the derived images were stored at (their shorter side at most this)
    spec_key: tuple = ()  # (height, width, channels, fit, kernel) the arrays were decoded at

    @property
    def canonical(self) -> ViewColumn:
        return self.views.canonical

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class LoadSpec:
    """The size, channels and resize rule the model wants (its InputSpec): every image is decoded at this size."""

    height: int
    width: int
    channels: int
    fit: str = "cover"
    kernel: str = "lanczos3"

    @staticmethod
    def of(spec) -> LoadSpec:
        return LoadSpec(spec.height, spec.width, spec.channels, getattr(spec, "fit", "cover"), getattr(spec, "kernel", "lanczos3"))

    def tag(self) -> str:
        return f"{self.height}x{self.width}x{self.channels}-{self.fit}-{self.kernel}"


_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "linear": Image.Resampling.BILINEAR,
    "cubic": Image.Resampling.BICUBIC,
    "mitchell": Image.Resampling.BICUBIC,
    "lanczos2": Image.Resampling.LANCZOS,
    "lanczos3": Image.Resampling.LANCZOS,
}


def fit_image(img: Image.Image, spec: LoadSpec) -> np.ndarray:
    """An RGB PIL image at the spec's size as sharp's `resize(width, height, {fit})` makes it (centre
    position, white background): HWC uint8 with spec.channels channels."""
    w, h = img.size
    resample = _RESAMPLE.get(spec.kernel, Image.Resampling.LANCZOS)
    if spec.fit == "fill":
        out = img.resize((spec.width, spec.height), resample)
    elif spec.fit == "contain":
        scale = min(spec.width / w, spec.height / h)
        inner = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample)
        out = Image.new("RGB", (spec.width, spec.height), (255, 255, 255))
        out.paste(inner, ((spec.width - inner.width) // 2, (spec.height - inner.height) // 2))
    else:  # cover
        scale = max(spec.width / w, spec.height / h)
        rw, rh = max(spec.width, round(w * scale)), max(spec.height, round(h * scale))
        big = img.resize((rw, rh), resample)
        left, top = (rw - spec.width) // 2, (rh - spec.height) // 2
        out = big.crop((left, top, left + spec.width, top + spec.height))
    if spec.channels == 1:
        out = out.convert("L")
    arr = np.asarray(out, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _decode_v2(client, bucket: str, meta: dict, spec: LoadSpec) -> np.ndarray | None:
    """Layout 2: canonical.png at the working resolution and the views strip, each resized to the model's input."""
    png = get_bytes(client, bucket, artifact_keys.derived_canonical(meta["imageId"]))
    if png is None:
        return None
    arrays = [fit_image(Image.open(io.BytesIO(png)).convert("RGB"), spec)]
    views = meta["views"]
    if views["count"] > 0:
        jpeg = get_bytes(client, bucket, artifact_keys.derived_views(meta["imageId"]))
        if jpeg is None:
            return None
        strip = Image.open(io.BytesIO(jpeg)).convert("RGB")
        side, stride = views["size"], views["stride"]
        square = LoadSpec(spec.height, spec.width, spec.channels, "fill", spec.kernel)
        for i in range(views["count"]):
            arrays.append(fit_image(strip.crop((i * stride, 0, i * stride + side, side)), square))
    return np.stack(arrays)


def _decode_v1(client, bucket: str, meta: dict, spec: LoadSpec) -> np.ndarray | None:
    """Layout 1 (until migrated): views.npy at the size of the model that was serving when it was written."""
    body = get_bytes(client, bucket, artifact_keys.derived_views_v1(meta["imageId"]))
    if body is None:
        return None
    arr = np.load(io.BytesIO(body))
    if arr.shape[1:] == (spec.height, spec.width, spec.channels):
        return arr
    square = LoadSpec(spec.height, spec.width, spec.channels, "fill", spec.kernel)
    return np.stack([fit_image(Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).convert("RGB"), square) for a in arr])


def _cached_image(client, bucket: str, meta_key: str, meta_etag: str, cache: Path, spec: LoadSpec):
    """The image's compact meta with the path of its decoded views on local disk. Both are cached
    under the meta object's ETag (from the listing; augment rewrites the meta last, whenever the
    image's derived files change), so an unchanged image costs no request at all."""
    stem = f"{meta_key.split('/')[1]}-{hashlib.sha1(meta_etag.encode()).hexdigest()[:12]}-{spec.tag()}"
    record, cached = cache / f"{stem}.json", cache / f"{stem}.npy"
    if record.exists() and cached.exists():
        image = _Image(**json.loads(record.read_text()), cached=str(cached))
        os.utime(record)  # used now: the cache is pruned least recently used first
        return image
    meta = json.loads(get_bytes(client, bucket, meta_key) or b"null")
    if not meta:
        return None
    arr = (_decode_v2 if meta.get("schemaVersion") == 2 else _decode_v1)(client, bucket, meta, spec)
    if arr is None:
        return None
    # Only what the run needs is kept per image: the corpus' metas would otherwise be its largest part.
    image = {"image_id": meta["imageId"], "key": meta["key"], "etag": meta["etag"], "resolution": stored_resolution(meta), "views": int(arr.shape[0])}
    # Unique per writer: ranks of a torchrun job fill the same cache at the same time. The record last:
    # a record means its array is complete.
    suffix = f".{os.getpid()}.{threading.get_ident()}.tmp"
    with open(f"{cached}{suffix}", "wb") as fh:
        np.save(fh, arr)
    os.replace(f"{cached}{suffix}", cached)
    Path(f"{record}{suffix}").write_text(json.dumps(image))
    os.replace(f"{record}{suffix}", record)
    return _Image(**image, cached=str(cached))


@dataclass(frozen=True, slots=True)
class _Image:
    image_id: str
    key: str
    etag: str
    resolution: int
    views: int
    cached: str  # its decoded views on local disk


def stored_resolution(meta: dict) -> int:
    """The largest model input the image's derived files can feed without upsampling what was stored:
    layout 2 records its working resolution; layout 1 stored the model's input size."""
    if meta.get("schemaVersion") == 2:
        return int(meta["working"]["size"])
    return int(min(meta["shape"][1], meta["shape"][2]))


class ResolutionError(RuntimeError):
    """The model's input is larger than the resolution the derived images were stored at."""


#: Cache entries used this recently are never pruned: another run (a rank of the same job, or a job
#: at another input size) may be between caching them and reading them.
CACHE_GRACE_SECONDS = 3600.0


@dataclass(slots=True)
class _CacheEntry:
    """An image's files in the decode cache (its record and array)."""

    size: int = 0
    last_used: float = 0.0
    paths: list[str] = field(default_factory=list)


def prune_cache(cache: Path, max_bytes: int, used: set[str], grace_seconds: float = CACHE_GRACE_SECONDS, now: float | None = None) -> dict[str, int]:
    """Removes the least recently used entries of a decoded-image cache until it holds at most
    `max_bytes`. An entry is an image's record and array (one file stem); it was last used when one of
    them was last written, or its record read. Never removed: the entries in `used` (the load that
    prunes) and any used within `grace_seconds`. Leftovers of interrupted writes (*.tmp) older than the
    grace are removed whatever the size. Returns the bytes and entries kept and removed."""
    now = time.time() if now is None else now
    entries: dict[str, _CacheEntry] = {}  # by file stem
    leftovers: list[str] = []
    with os.scandir(cache) as listing:
        for file in listing:
            try:
                st = file.stat()
            except FileNotFoundError:  # removed by another run meanwhile
                continue
            if file.name.endswith(".tmp"):
                if now - st.st_mtime > grace_seconds:
                    leftovers.append(file.path)
                continue
            stem, _, ext = file.name.rpartition(".")
            if ext not in ("json", "npy"):
                continue
            entry = entries.setdefault(stem, _CacheEntry())
            entry.size += st.st_size
            entry.last_used = max(entry.last_used, st.st_mtime)
            entry.paths.append(file.path)
    for path in leftovers:
        Path(path).unlink(missing_ok=True)
    total = sum(e.size for e in entries.values())
    removed = removed_bytes = 0
    stale = sorted((e for stem, e in entries.items() if stem not in used and now - e.last_used > grace_seconds), key=lambda e: e.last_used)
    for entry in stale:
        if total <= max_bytes:
            break
        for path in entry.paths:
            Path(path).unlink(missing_ok=True)
        total -= entry.size
        removed += 1
        removed_bytes += entry.size
    return {"bytes": total, "entries": len(entries) - removed, "removed": removed, "removedBytes": removed_bytes}


def load_dataset(
    client, bucket: str, cache_dir: str, workers: int = 16, spec=None, log=print, check_resolution: bool = True, cache_max_bytes: int | None = None
) -> Dataset:
    """Every derived image with its views, decoded at the model's input size (`spec`: an InputSpec or
    LoadSpec; default 32x32 RGB), and the human labels. Refuses a model larger than the working
    resolution the images were stored at: it would only ever see upsampled pixels. With
    `cache_max_bytes`, the decode cache is pruned to that size once the rows are read (prune_cache)."""
    spec = LoadSpec.of(spec) if spec is not None else LoadSpec(32, 32, 3)
    cache = Path(cache_dir) / "derived"
    cache.mkdir(parents=True, exist_ok=True)
    # S3 lists in key order, so rows come out sorted by image id.
    metas = [(k, etag) for k, etag in list_objects(client, bucket, artifact_keys.PREFIXES["derived"]) if k.endswith("/meta.json")]
    done = [0]
    lock = threading.Lock()

    def one(listed: tuple[str, str]):
        result = _cached_image(client, bucket, listed[0], listed[1], cache, spec)
        with lock:
            done[0] += 1
            if done[0] % 10_000 == 0:
                log(f"[data] {done[0]}/{len(metas)} images read", flush=True)
        return result

    loaded = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # A chunk at a time: one pending future per image would itself grow with the corpus.
        for start in range(0, len(metas), 4096):
            loaded.extend(r for r in pool.map(one, metas[start : start + 4096]) if r is not None)
    if not loaded:
        raise RuntimeError("no derived images in the artifacts bucket yet: upload images and let augment run first")
    working = min(m.resolution for m in loaded)
    if check_resolution and max(spec.height, spec.width) > working:
        old = sum(1 for m in loaded if m.resolution < max(spec.height, spec.width))
        raise ResolutionError(
            f"the model's input is {spec.height}x{spec.width} but {old} of {len(loaded)} images are stored at {working} px "
            f"(WORKING_SIZE, or layout 1 not yet migrated): it would only see upsampled pixels. Raise WORKING_SIZE, or let the "
            "stack re-derive them (it does on start), then train again"
        )
    views_per_image = min(m.views for m in loaded)
    loaded.sort(key=lambda m: m.image_id)
    # The decoded rows go to a file on local disk, one image at a time: memory holds none of them.
    views = DiskViews(Path(cache_dir) / "stores", len(loaded), (views_per_image, spec.height, spec.width, spec.channels))

    def fill(row: int) -> None:
        views.write(row, np.load(loaded[row].cached)[:views_per_image])

    with ThreadPoolExecutor(max_workers=min(workers, 8)) as pool:
        for start in range(0, len(loaded), 4096):
            list(pool.map(fill, range(start, min(start + 4096, len(loaded)))))
    if cache_max_bytes is not None:
        kept = prune_cache(cache, cache_max_bytes, {Path(m.cached).stem for m in loaded})
        if kept["removed"]:
            log(f"[data] decode cache: removed {kept['removed']} least recently used entries ({kept['removedBytes'] / 1e9:.2f} GB)")
        if kept["bytes"] > cache_max_bytes:
            log(
                f"[data] decode cache: {kept['bytes'] / 1e9:.2f} GB, over cache_max_gb ({cache_max_bytes / 1e9:g}): "
                "what this run and runs of the last hour used is kept"
            )
    image_ids = [m.image_id for m in loaded]
    keys = [m.key for m in loaded]

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
    for m in loaded:
        digest.update(f"{m.image_id}:{m.etag}\n".encode())
    for row in sorted(raw_labels):
        digest.update(f"{image_ids[row]}={raw_labels[row]}\n".encode())
    snapshot = digest.hexdigest()[:16]
    log(
        f"[data] {len(image_ids)} images x {views_per_image} views at {spec.height}x{spec.width}x{spec.channels} "
        f"(stored at {working} px), {len(label_of)} human labels in {len(class_names)} classes, snapshot {snapshot}"
    )
    return Dataset(
        image_ids=image_ids,
        keys=keys,
        views=views,
        label_of=label_of,
        class_names=class_names,
        snapshot=snapshot,
        working_size=working,
        spec_key=(spec.height, spec.width, spec.channels, spec.fit, spec.kernel),
    )


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

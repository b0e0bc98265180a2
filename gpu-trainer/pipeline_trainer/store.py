"""Decoded training images on local disk, read by rows: the corpus is never held in memory.

`DiskViews` keeps every image's views (uint8 [V, H, W, C] at the model's input size) as one
fixed-size row of an unlinked temporary file and reads rows with `preadv`: the kernel's page cache
holds what fits, and the process holds only the rows it asked for, so a run's memory does not grow
with the corpus. `ArrayViews` gives an in-memory array (or tensor) the same interface, for tests and
benchmarks. `PrefetchedBatches` reads each step's rows on a background thread, ahead of the step
that needs them, and measures how long the step waited.
"""

from __future__ import annotations

import abc
import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np


def _rows_of(key, n: int) -> np.ndarray:
    """Row numbers for an index (slice, list, array, bool mask or tensor), bounds-checked."""
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    if hasattr(key, "detach"):  # a torch tensor
        key = key.detach().cpu().numpy()
    rows = np.asarray(key)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise IndexError(f"boolean index of shape {rows.shape} for {n} rows")
        return np.nonzero(rows)[0]
    rows = rows.astype(np.int64, copy=False).reshape(-1)
    rows = np.where(rows < 0, rows + n, rows)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"row index out of range for {n} rows")
    return rows


class Views(abc.ABC):
    """Rows of uint8 [V, H, W, C]; indexed like a numpy array of shape [N, V, H, W, C] (the first
    index selects rows and is read; the rest applies to what was read)."""

    row_shape: tuple[int, ...]

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def read(self, rows: np.ndarray) -> np.ndarray:
        """These rows (int64, in range), in this order."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.row_shape))

    def __getitem__(self, key):
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.read(_rows_of([int(key)], len(self)))[0]
            return out[rest] if rest else out
        out = self.read(_rows_of(key, len(self)))
        return out[(slice(None), *rest)] if rest else out

    @property
    def canonical(self) -> ViewColumn:
        """View 0 of every row (the canonical image), indexed like uint8 [N, H, W, C]."""
        return ViewColumn(self, 0)

    def subset(self, rows) -> Views:
        """These rows, in this order, as their own Views (nothing is copied)."""
        return Subset(self, _rows_of(rows, len(self)))


class ViewColumn:
    """One view of every row of a Views."""

    def __init__(self, views: Views, view: int) -> None:
        self.views, self.view = views, view

    def __len__(self) -> int:
        return len(self.views)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.views), *self.views.row_shape[1:])

    def __getitem__(self, key):
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.views[int(key)][self.view]
            return out[rest] if rest else out
        out = self.views[key][:, self.view]
        return out[(slice(None), *rest)] if rest else out


class Subset(Views):
    def __init__(self, base: Views, rows: np.ndarray) -> None:
        self.base, self.rows, self.row_shape = base, rows, base.row_shape

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self.base.read(self.rows[rows])


class ArrayViews(Views):
    """An array already in memory (numpy, or a torch tensor on any device) behind the same interface."""

    def __init__(self, array) -> None:
        self.array = array
        self.row_shape = tuple(array.shape[1:])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, rows: np.ndarray):
        if hasattr(self.array, "detach"):
            import torch

            return self.array[torch.from_numpy(rows).to(self.array.device)]
        return self.array[rows]


class DiskViews(Views):
    """N rows of uint8 `row_shape` in an unlinked temporary file under `directory` (gone when closed
    or when the process ends, crash included). Rows are written once (`write`, from any thread) and
    read with `preadv`: the page cache keeps hot rows, the process only the rows being used."""

    def __init__(self, directory: str | os.PathLike, n: int, row_shape: tuple[int, ...]) -> None:
        os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="views-", suffix=".u8", dir=directory)
        os.unlink(path)
        self.fd, self.n, self.row_shape = fd, n, tuple(int(s) for s in row_shape)
        self.row_bytes = int(np.prod(self.row_shape))
        os.ftruncate(fd, max(1, n * self.row_bytes))

    def __len__(self) -> int:
        return self.n

    def write(self, row: int, value: np.ndarray) -> None:
        data = np.ascontiguousarray(value, dtype=np.uint8)
        if data.shape != self.row_shape:
            raise ValueError(f"row {row} has shape {data.shape}, the store's rows are {self.row_shape}")
        view = memoryview(data).cast("B")
        offset, done = row * self.row_bytes, 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

    def read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.row_shape), dtype=np.uint8)
        flat = memoryview(out.reshape(-1)).cast("B")
        i = 0
        while i < len(rows):
            j = i + 1  # one read for a run of consecutive rows
            while j < len(rows) and rows[j] == rows[j - 1] + 1:
                j += 1
            start, want = int(rows[i]) * self.row_bytes, (j - i) * self.row_bytes
            target, got = flat[i * self.row_bytes : j * self.row_bytes], 0
            while got < want:
                n = os.preadv(self.fd, [target[got:]], start + got)
                if n == 0:
                    raise OSError(f"short read from the view store at row {rows[i]}")
                got += n
            i = j
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


def on_device(rows, device):
    """Rows read from Views (numpy, or a tensor when the views are one) as a tensor on `device`."""
    import torch

    tensor = rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rows))
    return tensor.to(device, non_blocking=True)


def as_views(views) -> Views:
    return views if isinstance(views, Views) else ArrayViews(views)


class _Batches(abc.ABC):
    """Each training step's rows; a context manager that stops whatever reads them."""

    wait_seconds = 0.0

    @abc.abstractmethod
    def next(self):
        """The next step's rows as a uint8 tensor [B, V, H, W, C] on the device."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stops whatever reads ahead."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ResidentBatches(_Batches):
    """Rows of a tensor already on the device, gathered in place (no reading, no waiting)."""

    def __init__(self, views, next_rows: Callable[[], np.ndarray], device) -> None:
        self.views, self.next_rows, self.device = views, next_rows, device

    def next(self):
        return self.views[self.next_rows().to(self.device)]

    def close(self) -> None:
        """Nothing reads ahead."""


def batches_for(views, next_rows: Callable, device, depth: int) -> _Batches:
    """Each step's rows of `views`: gathered in place from a tensor, else read ahead from Views."""
    if hasattr(views, "detach"):
        return ResidentBatches(views, next_rows, device)
    return PrefetchedBatches(as_views(views), next_rows, device, depth)


class PrefetchedBatches(_Batches):
    """Each step's rows, read by a background thread `depth` steps ahead (into pinned memory when the
    device is CUDA, copied without blocking). `next_rows()` runs on that thread, in step order.
    `wait_seconds`: how long the training loop waited for data in all."""

    def __init__(self, views: Views, next_rows: Callable[[], np.ndarray], device, depth: int = 3) -> None:
        import torch

        self.views, self.next_rows, self.device = views, next_rows, device
        self.pin = device.type == "cuda"
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stopping = threading.Event()
        self.wait_seconds = 0.0
        self._torch = torch
        self.thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self.thread.start()

    def _produce(self) -> None:
        torch = self._torch
        try:
            while not self.stopping.is_set():
                rows = np.sort(_rows_of(self.next_rows(), len(self.views)))
                batch = torch.from_numpy(np.asarray(self.views.read(rows)))
                if self.pin:
                    batch = batch.pin_memory()
                self._put(batch)
        except BaseException as err:  # noqa: BLE001 - handed to the training loop
            self._put(err)

    def _put(self, item) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self):
        """The next step's rows as a uint8 tensor [B, V, H, W, C] on the device."""
        t0 = time.perf_counter()
        item = self.queue.get()
        self.wait_seconds += time.perf_counter() - t0
        if isinstance(item, BaseException):
            raise item
        return item.to(self.device, non_blocking=True)

    def close(self) -> None:
        self.stopping.set()
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass
        self.thread.join(timeout=5)

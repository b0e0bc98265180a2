"""Shared fixtures: a real S3-compatible endpoint (the project's own local server) for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "gpu-trainer"))


@pytest.fixture()
def local_s3(tmp_path, monkeypatch):
    """Starts `scripts/local-s3.ts` on a free port and yields its endpoint URL."""
    tsx = REPO_ROOT / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        pytest.fail("node_modules missing: run `npm ci` first (npm test does)")
    env = {**os.environ, "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}
    proc = subprocess.Popen(
        [str(tsx), "scripts/local-s3.ts", "--data-dir", str(tmp_path / "s3"), "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    endpoint = None
    for line in proc.stdout:
        if line.startswith("s3 ready "):
            endpoint = line.split()[-1]
            break
    if endpoint is None:
        proc.kill()
        pytest.fail("local S3 server did not start")
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


def fashion_mnist(split: str, count: int):
    import gzip

    import numpy as np

    root = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    with gzip.open(root / f"{split}-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(root / f"{split}-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)[:count]
    return images, labels


def populate_derived(client, count: int, labels_per_class: int, views: int = 3, layout: int = 2, working_size: int = 256) -> list[int]:
    """Writes derived images and human labels for Fashion-MNIST test images, as augment does: layout 2
    (canonical.png at its own 28x28, `views - 1` views of 28 px side by side in views.jpg at a stride of
    32; shared/derived-layout.ts), or layout 1 (views.npy, uint8 [views, 32, 32, 3]) as written before
    derived images were independent of the model."""
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    images, labels = fashion_mnist("t10k", count)
    seen: dict[int, int] = {}
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        key = f"fm/{i:05d}.png"
        image_id = hashlib.sha256(key.encode()).hexdigest()[:32]
        client.put_object(Bucket="images", Key=key, Body=b"png")
        base = {
            "key": key,
            "imageId": image_id,
            "etag": f"e{i}",
            "sequencer": "01",
            "source": {"width": 28, "height": 28, "format": "png", "bytes": 3},
            "createdAt": "2026-11-28T00:00:00.000Z",
        }
        if layout == 1:
            canonical = np.repeat(np.pad(img, 2)[:, :, None], 3, axis=2)
            stack = np.stack([canonical] + [np.roll(canonical, shift=s, axis=1) for s in range(1, views)])
            buf = io.BytesIO()
            np.save(buf, stack)
            client.put_object(Bucket="artifacts", Key=f"derived/{image_id}/views.npy", Body=buf.getvalue())
            meta = {**base, "schemaVersion": 1, "file": "views.npy", "shape": list(stack.shape), "views": views - 1}
        else:
            rgb = np.repeat(img[:, :, None], 3, axis=2)
            png = io.BytesIO()
            Image.fromarray(rgb).save(png, format="PNG")
            client.put_object(Bucket="artifacts", Key=f"derived/{image_id}/canonical.png", Body=png.getvalue())
            strip = np.full((28, 32 * (views - 1), 3), 255, np.uint8)
            for v in range(views - 1):
                strip[:, v * 32 : v * 32 + 28] = np.roll(rgb, shift=v + 1, axis=1)
            if views > 1:
                jpg = io.BytesIO()
                Image.fromarray(strip).save(jpg, format="JPEG", quality=90, subsampling=0)
                client.put_object(Bucket="artifacts", Key=f"derived/{image_id}/views.jpg", Body=jpg.getvalue())
            meta = {
                **base,
                "schemaVersion": 2,
                "working": {"size": working_size, "viewSize": 224},
                "canonical": {"file": "canonical.png", "width": 28, "height": 28},
                "views": {"file": "views.jpg", "count": views - 1, "size": 28, "stride": 32},
            }
        client.put_object(Bucket="artifacts", Key=f"derived/{image_id}/meta.json", Body=json.dumps(meta).encode())
        if seen.get(int(label), 0) < labels_per_class:
            seen[int(label)] = seen.get(int(label), 0) + 1
            doc = {"key": key, "label": f"class-{label}", "at": "2026-11-28T00:00:00.000Z"}
            client.put_object(Bucket="artifacts", Key=f"labels/{image_id}.json", Body=json.dumps(doc).encode())
    return labels.tolist()

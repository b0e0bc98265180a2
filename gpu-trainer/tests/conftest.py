"""Shared fixtures: a real S3-compatible endpoint (the project's own local server) for end-to-end tests."""

from __future__ import annotations

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

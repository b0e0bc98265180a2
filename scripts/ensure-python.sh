#!/usr/bin/env bash
# Creates the trainer's Python virtual environment (.venv) on first use; a no-op when it is ready.
# pip resolves from the configured index; --retries 0 --timeout 5 fail fast on a missing name.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
requirements=gpu-trainer/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating the Python environment in $venv (torch CPU, onnx, onnxruntime, boto3, pytest); first run only" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 5 -r "$requirements" >&2
echo "$want" > "$stamp"
echo "[setup] Python environment ready" >&2

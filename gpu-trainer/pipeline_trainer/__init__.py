"""GPU trainer for the streaming image-embedding pipeline.

Commands (run from the repository root with the project's virtual environment):

    .venv/bin/python -m pipeline_trainer init --endpoint-url http://127.0.0.1:4566

`init` publishes a randomly initialised encoder as model version v0 (ONNX + manifest) and
points `models/serving.json` at it, so the very first upload can be embedded.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"

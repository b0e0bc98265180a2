"""Command line: `python -m pipeline_trainer <command>`.

    init       publish a randomly initialised encoder as the first serving model (no-op if one exists)
    run        one training run: pretrain, pseudo-label, evaluate, gate, export, publish
    import     evaluate an uploaded encoder (POST /models/import) with the gate and publish it
    evaluate   held-out metrics of a published version (default: the serving one), as JSON

S3 comes from $S3_ENDPOINT_URL (or AWS), the bucket from $ARTIFACTS_BUCKET (default `artifacts`).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from .config import ConfigError, load_config
from .init_model import init_model
from .parent import die_with_parent
from .s3io import S3Location, make_client


def _add_s3_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: $S3_ENDPOINT_URL, else AWS)")
    p.add_argument("--artifacts-bucket", default=None, help="artifacts bucket (default: $ARTIFACTS_BUCKET or 'artifacts')")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="JSON file of config keys")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of the run")
    p.add_argument("--preset", default=None, help="a named configuration: cpu-small, gpu-resnet18-128, gpu-resnet50-224, gpu-vits16-224 (also $TRAINER_PRESET)")


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="pipeline_trainer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_init = sub.add_parser("init", help="publish a randomly initialised encoder as the first serving model")
    _add_s3_args(p_init)
    p_init.add_argument("--seed", type=int, default=0)

    p_run = sub.add_parser("run", help="one training run")
    _add_s3_args(p_run)
    _add_config_args(p_run)
    p_run.add_argument("--job-id", default=None, help="names the run record runs/<job-id>.json and its checkpoint (resumes if one exists)")

    p_import = sub.add_parser("import", help="evaluate and publish an encoder uploaded under imports/<import-id>/")
    _add_s3_args(p_import)
    _add_config_args(p_import)
    p_import.add_argument("--job-id", default=None, help="names the run record runs/<job-id>.json")
    p_import.add_argument("--import-id", required=True, help="the upload: imports/<import-id>/request.json (written by POST /models/import)")

    p_eval = sub.add_parser("evaluate", help="held-out metrics of a published version")
    _add_s3_args(p_eval)
    _add_config_args(p_eval)
    p_eval.add_argument("--version", default=None, help="model version (default: the serving one)")

    args = parser.parse_args(argv)
    loc = S3Location.from_env(args.endpoint_url, args.artifacts_bucket)
    client = make_client(loc)
    try:
        if args.command == "init":
            init_model(client, loc.artifacts_bucket, seed=args.seed)
        elif args.command == "run":
            from .train import run

            cfg = load_config(args.config, args.set, preset=args.preset, max_minutes=args.max_minutes)
            run(cfg, client, loc.artifacts_bucket, args.job_id or f"manual-{uuid.uuid4().hex[:8]}")
        elif args.command == "import":
            from .importer import import_job
            from .train import run

            cfg = load_config(args.config, args.set, preset=args.preset, max_minutes=args.max_minutes)
            result = run(cfg, client, loc.artifacts_bucket, args.job_id or f"import-{uuid.uuid4().hex[:8]}", work=import_job(args.import_id))
            if result.get("state") not in ("published", "rejected", "skipped"):
                return 1
        elif args.command == "evaluate":
            from .train import evaluate_version

            cfg = load_config(args.config, args.set, preset=args.preset, max_minutes=args.max_minutes)
            print(json.dumps(evaluate_version(cfg, client, loc.artifacts_bucket, args.version), indent=2))
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

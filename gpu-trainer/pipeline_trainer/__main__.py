"""Command line: `python -m pipeline_trainer <command>`."""

from __future__ import annotations

import argparse
import sys

from .init_model import init_model
from .s3io import S3Location, make_client


def _add_s3_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: $S3_ENDPOINT_URL, else AWS)")
    p.add_argument("--artifacts-bucket", default=None, help="artifacts bucket (default: $ARTIFACTS_BUCKET or 'artifacts')")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline_trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_init = sub.add_parser("init", help="publish a randomly initialised encoder as the first serving model")
    _add_s3_args(p_init)
    p_init.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    loc = S3Location.from_env(args.endpoint_url, args.artifacts_bucket)
    client = make_client(loc)
    if args.command == "init":
        init_model(client, loc.artifacts_bucket, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

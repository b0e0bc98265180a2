"""S3 access through a configurable endpoint (AWS, or the embedded stack's local server)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


@dataclass(frozen=True)
class S3Location:
    endpoint_url: str | None
    artifacts_bucket: str
    images_bucket: str
    region: str

    @staticmethod
    def from_env(endpoint_url: str | None = None, artifacts_bucket: str | None = None) -> S3Location:
        return S3Location(
            endpoint_url=endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None,
            artifacts_bucket=artifacts_bucket or os.environ.get("ARTIFACTS_BUCKET", "artifacts"),
            images_bucket=os.environ.get("IMAGES_BUCKET", "images"),
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )


def make_client(loc: S3Location):
    kwargs: dict = {
        "region_name": loc.region,
        "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32),
    }
    if loc.endpoint_url:
        kwargs["endpoint_url"] = loc.endpoint_url
        # The local server accepts any credentials; only fall back when none are configured.
        if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            kwargs["aws_access_key_id"] = "local"
            kwargs["aws_secret_access_key"] = "local"
    return boto3.client("s3", **kwargs)


def get_bytes(client, bucket: str, key: str) -> bytes | None:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def get_json(client, bucket: str, key: str) -> dict | None:
    body = get_bytes(client, bucket, key)
    return None if body is None else json.loads(body)


def put_bytes(client, bucket: str, key: str, body: bytes, content_type: str) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def put_json(client, bucket: str, key: str, doc: dict) -> None:
    put_bytes(client, bucket, key, json.dumps(doc, indent=2).encode(), "application/json")


def list_objects(client, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, ETag without quotes) of every object under `prefix`, in key order."""
    out: list[tuple[str, str]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend((obj["Key"], obj["ETag"].strip('"')) for obj in page.get("Contents", []))
    return out


def list_keys(client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys

"""The training lease (`locks/training.json`), shared with the TypeScript side.

A run started by the pipeline (POST /train, the label trigger) finds the lease already taken for
its job id; a run started directly (EventBridge Scheduler -> ECS RunTask, or by hand) takes it here.
Either way at most one run trains at a time. Conditional writes (If-None-Match / If-Match) make
taking it atomic; an expired lease (a crashed holder) can be taken over.
"""

from __future__ import annotations

import datetime as dt
import json

from botocore.exceptions import ClientError

from . import keys

LEASE_KEY = keys.TRAINING_LOCK


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _active(lease: dict, now: dt.datetime) -> bool:
    expires = dt.datetime.fromisoformat(lease["expiresAt"].replace("Z", "+00:00"))
    return not lease.get("released") and expires > now


def _conditional_put(client, bucket: str, body: dict, **condition) -> bool:
    try:
        client.put_object(Bucket=bucket, Key=LEASE_KEY, Body=json.dumps(body).encode(), ContentType="application/json", **condition)
        return True
    except ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            return False
        raise


def acquire(client, bucket: str, job_id: str, lease_seconds: float) -> tuple[bool, str | None]:
    """(True, None) when this job holds the lease; (False, holder) when another active run does."""
    now = _now()
    lease = {"jobId": job_id, "acquiredAt": _iso(now), "expiresAt": _iso(now + dt.timedelta(seconds=lease_seconds))}
    try:
        head = client.head_object(Bucket=bucket, Key=LEASE_KEY)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        return (True, None) if _conditional_put(client, bucket, lease, IfNoneMatch="*") else (False, "unknown")
    current = json.loads(client.get_object(Bucket=bucket, Key=LEASE_KEY)["Body"].read())
    if _active(current, now):
        return (True, None) if current["jobId"] == job_id else (False, current["jobId"])
    return (True, None) if _conditional_put(client, bucket, lease, IfMatch=head["ETag"]) else (False, "unknown")


def release(client, bucket: str, job_id: str) -> None:
    try:
        head = client.head_object(Bucket=bucket, Key=LEASE_KEY)
    except ClientError:
        return
    current = json.loads(client.get_object(Bucket=bucket, Key=LEASE_KEY)["Body"].read())
    if current.get("jobId") != job_id or current.get("released"):
        return
    _conditional_put(client, bucket, {**current, "released": True, "expiresAt": _iso(_now())}, IfMatch=head["ETag"])

"""The training lease against the project's local S3 server (real conditional writes)."""

import json

from pipeline_trainer import lease
from pipeline_trainer.s3io import S3Location, make_client


def test_one_holder_at_a_time_released_and_expired_leases_can_be_taken(local_s3):
    client = make_client(S3Location.from_env())
    assert lease.acquire(client, "artifacts", "a", 60) == (True, None)
    assert lease.acquire(client, "artifacts", "a", 60) == (True, None)  # the holder itself (started via the API)
    assert lease.acquire(client, "artifacts", "b", 60) == (False, "a")
    lease.release(client, "artifacts", "b")
    assert lease.acquire(client, "artifacts", "b", 60) == (False, "a")
    lease.release(client, "artifacts", "a")
    assert lease.acquire(client, "artifacts", "b", 0.001) == (True, None)
    assert lease.acquire(client, "artifacts", "c", 60) == (True, None)  # b's lease expired
    assert json.loads(client.get_object(Bucket="artifacts", Key=lease.LEASE_KEY)["Body"].read())["jobId"] == "c"


def test_a_run_does_not_start_while_another_holds_the_lease(local_s3, tmp_path):
    from pipeline_trainer.__main__ import main

    client = make_client(S3Location.from_env())
    assert lease.acquire(client, "artifacts", "other-run", 600) == (True, None)
    assert main(["init"]) == 0
    assert main(["run", "--job-id", "scheduled-1", "--max-minutes", "1", "--set", f"cache_dir={tmp_path}"]) == 0
    from pipeline_trainer.s3io import get_json

    assert get_json(client, "artifacts", "runs/scheduled-1.json") is None

"""The artifact key layout and the lease record agree with the TypeScript definitions.

`schemas/artifact-keys.json` and `schemas/training-lease.schema.json` are generated from
`shared/artifact-keys.ts` and `shared/schemas.ts` (npm run schemas); a change on either side that
the other does not make fails here.
"""

import json
import pathlib

import jsonschema
from pipeline_trainer import keys, lease
from pipeline_trainer.s3io import S3Location, make_client

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_key_templates_and_prefixes_match_the_typescript_layout():
    layout = json.loads((REPO_ROOT / "schemas" / "artifact-keys.json").read_text())
    assert layout["templates"] == keys.TEMPLATES
    assert layout["prefixes"] == keys.PREFIXES


def test_key_builders_fill_the_templates():
    assert keys.manifest("v3") == "models/v3/manifest.json"
    assert keys.model_file("v3", "encoder.onnx") == "models/v3/encoder.onnx"
    assert keys.image_id_of_label(keys.label("abc")) == "abc"
    assert keys.run("job-1") == "runs/job-1.json"


def test_the_lease_python_writes_is_the_record_typescript_reads(local_s3):
    client = make_client(S3Location.from_env())
    assert lease.acquire(client, "artifacts", "job-7", 60) == (True, None)
    doc = json.loads(client.get_object(Bucket="artifacts", Key=keys.TRAINING_LOCK)["Body"].read())
    schema = json.loads((REPO_ROOT / "schemas" / "training-lease.schema.json").read_text())
    jsonschema.validate(doc, schema)
    lease.release(client, "artifacts", "job-7")
    jsonschema.validate(json.loads(client.get_object(Bucket="artifacts", Key=keys.TRAINING_LOCK)["Body"].read()), schema)

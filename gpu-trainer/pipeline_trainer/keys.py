"""The artifacts bucket's key layout, as the TypeScript side defines it (`shared/artifact-keys.ts`).

`tests/test_keys.py` checks these against `schemas/artifact-keys.json`, which is generated from the
TypeScript definition, so the two languages cannot drift apart.
"""

TEMPLATES = {
    "derivedCanonical": "derived/{imageId}/canonical.png",
    "derivedViews": "derived/{imageId}/views.jpg",
    "derivedMeta": "derived/{imageId}/meta.json",
    "derivedThumbnail": "derived/{imageId}/thumb.webp",
    "derivedViewsV1": "derived/{imageId}/views.npy",
    "derivedLayout": "layout/derived.json",
    "derivedMigration": "layout/migration.json",
    "importFile": "imports/{importId}/{file}",
    "quarantine": "quarantine/{imageId}.json",
    "catalogEntry": "catalog/{rank}-{imageId}.json",
    "events": "events/{imageId}.json",
    "deadLetter": "dead-letters/{messageId}.json",
    "label": "labels/{imageId}.json",
    "pseudoLabels": "pseudo-labels/{version}/pseudo-labels.json",
    "modelFile": "models/{version}/{file}",
    "manifest": "models/{version}/manifest.json",
    "report": "models/{version}/report.json",
    "servingPointer": "models/serving.json",
    "candidatePointer": "models/candidate.json",
    "rollout": "rollouts/{version}.json",
    "run": "runs/{jobId}.json",
    "trainingLock": "locks/training.json",
    "counterShard": "counts/{counter}/shard-{shard}.json",
    "indexMember": "counts/{counter}/members/{imageId}",
}

PREFIXES = {
    "derived": "derived/",
    "quarantine": "quarantine/",
    "events": "events/",
    "deadLetters": "dead-letters/",
    "labels": "labels/",
    "pseudoLabels": "pseudo-labels/",
    "models": "models/",
    "rollouts": "rollouts/",
    "runs": "runs/",
    "locks": "locks/",
    "counts": "counts/",
    "layout": "layout/",
    "imports": "imports/",
    "catalog": "catalog/",
}

SERVING_POINTER = TEMPLATES["servingPointer"]
CANDIDATE_POINTER = TEMPLATES["candidatePointer"]
TRAINING_LOCK = TEMPLATES["trainingLock"]
LABELS_PREFIX = PREFIXES["labels"]
MODELS_PREFIX = PREFIXES["models"]


def _fill(name: str, **values: str) -> str:
    for key, value in values.items():
        if not value or "/" in value:
            raise ValueError(f"artifact key {name}: bad {key} {value!r}")
    return TEMPLATES[name].format(**values)


def derived_canonical(image_id: str) -> str:
    return _fill("derivedCanonical", imageId=image_id)


def derived_views(image_id: str) -> str:
    return _fill("derivedViews", imageId=image_id)


def derived_views_v1(image_id: str) -> str:
    return _fill("derivedViewsV1", imageId=image_id)


def import_file(import_id: str, file: str) -> str:
    return _fill("importFile", importId=import_id, file=file)


def derived_meta(image_id: str) -> str:
    return _fill("derivedMeta", imageId=image_id)


def label(image_id: str) -> str:
    return _fill("label", imageId=image_id)


def image_id_of_label(key: str) -> str:
    """The image id in a `labels/<imageId>.json` key."""
    return key[len(LABELS_PREFIX) : -len(".json")]


def pseudo_labels(version: str) -> str:
    return _fill("pseudoLabels", version=version)


def model_file(version: str, file: str) -> str:
    return _fill("modelFile", version=version, file=file)


def manifest(version: str) -> str:
    return _fill("manifest", version=version)


def report(version: str) -> str:
    return _fill("report", version=version)


def run(job_id: str) -> str:
    return _fill("run", jobId=job_id)

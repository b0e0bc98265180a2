/**
 * The JSON shapes shared between TypeScript and the Python trainer, defined once here.
 * `npm run schemas` writes them as JSON Schema to `schemas/`, which the Python tests validate against.
 */
import { z } from 'zod';

const isoTime = z.string().min(20);
const modelVersion = z.string().regex(/^v\d+$/, 'model versions look like v0, v1, ...');

/** How raw RGB pixels become the encoder's input: value = (pixel / scale - mean[c]) / std[c]. */
export const InputSpecSchema = z.object({
  height: z.number().int().min(8).max(1024),
  width: z.number().int().min(8).max(1024),
  channels: z.union([z.literal(1), z.literal(3)]),
  layout: z.literal('NCHW'),
  channelOrder: z.literal('RGB'),
  resize: z.object({
    fit: z.enum(['cover', 'fill', 'contain']),
    kernel: z.enum(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3']),
  }),
  scale: z.literal(255),
  mean: z.array(z.number()).min(1).max(3),
  std: z.array(z.number().positive()).min(1).max(3),
});
export type InputSpec = z.infer<typeof InputSpecSchema>;

/** One paired comparison of the new and the serving encoder on the same held-out images. */
export const GateComparisonSchema = z.object({
  metric: z.string(),
  n: z.number().int().nonnegative(),
  new: z.number(),
  serving: z.number(),
  difference: z.number(),
  interval: z.tuple([z.number(), z.number()]),
  confidence: z.number(),
  newOnly: z.number().int().nonnegative(),
  servingOnly: z.number().int().nonnegative(),
  pWorse: z.number(),
  verdict: z.enum(['worse', 'within noise', 'better']),
});

/** The quality gate's decision: passed, why, which rule decided, and the paired comparisons behind it. */
export const GateSchema = z.object({
  passed: z.boolean(),
  reasons: z.array(z.string()),
  rule: z.string().optional(),
  comparisons: z.array(GateComparisonSchema).optional(),
});

/** `models/<version>/manifest.json`. */
export const ModelManifestSchema = z.object({
  schemaVersion: z.literal(1),
  version: modelVersion,
  createdAt: isoTime,
  parent: modelVersion.nullable(),
  encoder: z.object({
    file: z.string().min(1),
    format: z.literal('onnx'),
    inputName: z.string().min(1),
    outputName: z.string().min(1),
    embeddingDim: z.number().int().min(2).max(4096),
    normalized: z.boolean(),
    architecture: z.record(z.string(), z.unknown()),
  }),
  input: InputSpecSchema,
  metrics: z.record(z.string(), z.unknown()),
  gate: GateSchema,
  dataset: z.object({
    snapshot: z.string().nullable(),
    images: z.number().int().nonnegative(),
    labels: z.number().int().nonnegative(),
  }),
  training: z.record(z.string(), z.unknown()),
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;

/** `models/serving.json` and `models/candidate.json`. */
export const ModelPointerSchema = z.object({
  version: modelVersion,
  index: z.string().min(3).max(63),
  updatedAt: isoTime,
});
export type ModelPointer = z.infer<typeof ModelPointerSchema>;

const imageId = z.string().regex(/^[0-9a-f]{32}$/);
/** What both layouts record of the upload they were derived from. */
const derivedFrom = {
  key: z.string().min(1),
  imageId,
  etag: z.string(),
  sequencer: z.string(),
  source: z.object({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    format: z.string(),
    bytes: z.number().int().nonnegative(),
  }),
};

/**
 * Layout 1 (before derived images were independent of the model), still read while it is migrated:
 * views.npy, a NumPy .npy file ('|u1', C order) of shape [1 + views, height, width, channels] at the
 * serving model's input size; index 0 the canonical image.
 */
export const DerivedMetaV1Schema = z.object({
  schemaVersion: z.literal(1),
  ...derivedFrom,
  file: z.literal('views.npy'),
  shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  views: z.number().int().nonnegative(),
  createdAt: isoTime,
});
export type DerivedMetaV1 = z.infer<typeof DerivedMetaV1Schema>;

/**
 * `derived/<imageId>/meta.json` (layout 2, shared/derived-layout.ts), written after the files it
 * names: `canonical.png` (RGB, shorter side at most `working.size`) and, when views > 0, `views.jpg`
 * (`views.count` squares of `views.size` pixels side by side, each starting at `views.stride * i`).
 */
export const DerivedMetaV2Schema = z.object({
  schemaVersion: z.literal(2),
  ...derivedFrom,
  working: z.object({ size: z.number().int().positive(), viewSize: z.number().int().positive() }),
  canonical: z.object({ file: z.literal('canonical.png'), width: z.number().int().positive(), height: z.number().int().positive() }),
  views: z.object({
    file: z.literal('views.jpg'),
    count: z.number().int().nonnegative(),
    size: z.number().int().positive(),
    stride: z.number().int().positive(),
  }),
  /** `thumb.webp`, for the console: longer side at most THUMBNAIL_SIZE, never enlarged (absent before it existed: migrated). */
  thumbnail: z.object({ file: z.literal('thumb.webp'), width: z.number().int().positive(), height: z.number().int().positive() }).optional(),
  createdAt: isoTime,
});
export type DerivedMetaV2 = z.infer<typeof DerivedMetaV2Schema>;

/** Either layout: readers accept both while a data directory or bucket is migrated. */
export const DerivedMetaSchema = z.discriminatedUnion('schemaVersion', [DerivedMetaV1Schema, DerivedMetaV2Schema]);
export type DerivedMeta = z.infer<typeof DerivedMetaSchema>;

/** `quarantine/<imageId>.json`: an input that will never succeed. */
export const QuarantineRecordSchema = z.object({
  key: z.string().min(1),
  reason: z.string().min(1),
  at: isoTime,
  etag: z.string().optional(),
});
export type QuarantineRecord = z.infer<typeof QuarantineRecordSchema>;

/**
 * `catalog/<rank>-<imageId>.json`: one upload as augment first saw it, for GET /images (newest
 * first). An entry is current while the image's object still has this ETag and Last-Modified; a
 * re-upload or a delete leaves it stale, and the listing skips (and removes) it.
 */
export const CatalogEntrySchema = z.object({
  key: z.string().min(1),
  imageId: z.string().regex(/^[0-9a-f]{32}$/),
  etag: z.string(),
  uploadedAt: isoTime,
  size: z.number().int().nonnegative(),
});
export type CatalogEntry = z.infer<typeof CatalogEntrySchema>;

/** `events/<imageId>.json`: the newest S3 event seen for the image's key (a tombstone after a removal). */
export const EventLedgerRecordSchema = z.object({
  key: z.string().min(1),
  kind: z.enum(['created', 'removed']),
  sequencer: z.string(),
  at: isoTime,
});
export type EventLedgerRecord = z.infer<typeof EventLedgerRecordSchema>;

/** `dead-letters/<messageId>.json`: the error of a message's last attempt (AWS: SQS keeps none). */
export const DeadLetterRecordSchema = z.object({
  queue: z.string(),
  messageId: z.string().min(1),
  error: z.string(),
  receiveCount: z.number().int().nonnegative(),
  at: isoTime,
});
export type DeadLetterRecord = z.infer<typeof DeadLetterRecordSchema>;

/** Printable, bounded label strings. */
export const LabelValueSchema = z
  .string()
  .min(1, 'label must not be empty')
  .max(64, 'label must be at most 64 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it refuses; written as ranges so Python's re reads the generated JSON Schema too.
  .regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'label must be printable characters (no control characters)')
  .refine((s) => s.trim() === s, 'label must not start or end with whitespace');

/** `labels/<imageId>.json`: one human label per image, last write wins. */
export const LabelRecordSchema = z.object({ key: z.string().min(1), label: LabelValueSchema, at: isoTime });
export type LabelRecord = z.infer<typeof LabelRecordSchema>;

/** A message on the embed queue. */
export const EmbedMessageSchema = z.object({
  key: z.string().min(1),
  imageId: z.string().regex(/^[0-9a-f]{32}$/),
  sequencer: z.string(),
  /** Only these model versions (a rollout's backfill); absent: the serving model and any candidate. */
  versions: z.array(modelVersion).optional(),
  /** The upload's time (its S3 event), for the end-to-end lag metric. */
  uploadedAt: z.string().optional(),
});
export type EmbedMessage = z.infer<typeof EmbedMessageSchema>;

/** Vector metadata stored with every embedding. */
export const VectorMetadataSchema = z.object({
  key: z.string(),
  modelVersion: modelVersion,
  label: z.string().optional(),
  pseudoLabel: z.string().optional(),
  confidence: z.number().optional(),
});
export type VectorMetadata = z.infer<typeof VectorMetadataSchema>;

/** `pseudo-labels/<version>/pseudo-labels.json`: accepted pseudo-labels of unlabelled images. */
export const PseudoLabelsSchema = z.object({
  schemaVersion: z.literal(1),
  version: modelVersion,
  createdAt: isoTime,
  thresholds: z.record(z.string(), z.number()),
  items: z.array(
    z.object({
      imageId: z.string().regex(/^[0-9a-f]{32}$/),
      key: z.string().min(1),
      label: z.string().min(1),
      confidence: z.number().min(0).max(1),
    }),
  ),
});
export type PseudoLabels = z.infer<typeof PseudoLabelsSchema>;

/** A curve: [step, value] points. */
const CurveSchema = z.array(z.tuple([z.number(), z.number()]));

/** `models/<version>/report.json`: what a run or an import measured, with the training curves of a run. */
export const ModelReportSchema = z.object({
  version: modelVersion,
  jobId: z.string().optional(),
  createdAt: isoTime.optional(),
  gate: GateSchema,
  metrics: z.record(z.string(), z.unknown()),
  history: z
    .object({
      loss: CurveSchema,
      finetuneLoss: CurveSchema.optional(),
      accuracy: z.record(z.string(), CurveSchema).optional(),
    })
    .optional(),
});
export type ModelReport = z.infer<typeof ModelReportSchema>;

/** `runs/<jobId>.json`: a training run, written by the trainer. */
export const TrainingRunSchema = z.object({
  jobId: z.string().min(1),
  state: z.enum(['running', 'published', 'rejected', 'failed']),
  startedAt: isoTime,
  updatedAt: isoTime,
  finishedAt: isoTime.optional(),
  phase: z.string().optional(),
  progress: z.number().optional(),
  step: z.number().optional(),
  loss: z.number().optional(),
  maxMinutes: z.number().optional(),
  version: modelVersion.optional(),
  gate: GateSchema.optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
});
export type TrainingRun = z.infer<typeof TrainingRunSchema>;

/** `rollouts/<version>.json`: re-embedding the corpus into a candidate's index, then the flip. */
export const RolloutRecordSchema = z.object({
  version: modelVersion,
  index: z.string(),
  previous: modelVersion.nullable(),
  state: z.enum(['backfilling', 'serving', 'superseded', 'rolled-back']),
  /** Last image key sent for re-embedding; null before the first page. */
  cursor: z.string().nullable(),
  enqueueComplete: z.boolean(),
  enqueued: z.number().int().nonnegative(),
  startedAt: isoTime,
  updatedAt: isoTime,
  completedAt: isoTime.optional(),
});
export type RolloutRecord = z.infer<typeof RolloutRecordSchema>;

/** Everything written to `schemas/` for the other language. */
/** `locks/training.json`: the training lease (never two runs at once), written by both languages. */
export const TrainingLeaseSchema = z.object({
  jobId: z.string().min(1),
  acquiredAt: isoTime,
  expiresAt: isoTime,
  released: z.boolean().optional(),
});
export type TrainingLease = z.infer<typeof TrainingLeaseSchema>;

export const sharedSchemas = {
  'model-manifest': ModelManifestSchema,
  'model-pointer': ModelPointerSchema,
  'derived-meta': DerivedMetaSchema,
  'quarantine-record': QuarantineRecordSchema,
  'catalog-entry': CatalogEntrySchema,
  'event-ledger-record': EventLedgerRecordSchema,
  'dead-letter-record': DeadLetterRecordSchema,
  'label-record': LabelRecordSchema,
  'embed-message': EmbedMessageSchema,
  'vector-metadata': VectorMetadataSchema,
  'pseudo-labels': PseudoLabelsSchema,
  'training-run': TrainingRunSchema,
  'model-report': ModelReportSchema,
  'rollout-record': RolloutRecordSchema,
  'training-lease': TrainingLeaseSchema,
} as const;

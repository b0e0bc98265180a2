/**
 * The artifacts bucket's key layout (ARCHITECTURE.md's data layout), defined once. TypeScript
 * builds keys with `artifactKeys`; the layout is exported to `schemas/artifact-keys.json`
 * (`npm run schemas`), which the trainer's `pipeline_trainer/keys.py` is tested against, and the
 * IAM grants in infra/ are written from `ARTIFACT_PREFIXES`.
 */

/** Key templates: `{name}` is filled in by the key builders. */
export const ARTIFACT_KEY_TEMPLATES = {
  derivedCanonical: 'derived/{imageId}/canonical.png',
  derivedViews: 'derived/{imageId}/views.jpg',
  derivedMeta: 'derived/{imageId}/meta.json',
  /** A small WebP for the console (GET /thumbnails): never the original bytes. */
  derivedThumbnail: 'derived/{imageId}/thumb.webp',
  /** Layout 1's single file (canonical + views at the model's input size); read and deleted while migrating. */
  derivedViewsV1: 'derived/{imageId}/views.npy',
  /** What the derived images of this bucket are: layout, working resolution, whether every image has it. */
  derivedLayout: 'layout/derived.json',
  /** How far the AWS deployment's migration pass has listed (removed when it completes). */
  derivedMigration: 'layout/migration.json',
  /** An encoder uploaded for POST /models/import, with its optional weights. */
  importFile: 'imports/{importId}/{file}',
  quarantine: 'quarantine/{imageId}.json',
  /** One entry per upload, newest first in key order (rank: see catalog.ts), for GET /images. */
  catalogEntry: 'catalog/{rank}-{imageId}.json',
  events: 'events/{imageId}.json',
  deadLetter: 'dead-letters/{messageId}.json',
  label: 'labels/{imageId}.json',
  pseudoLabels: 'pseudo-labels/{version}/pseudo-labels.json',
  modelFile: 'models/{version}/{file}',
  manifest: 'models/{version}/manifest.json',
  report: 'models/{version}/report.json',
  servingPointer: 'models/serving.json',
  candidatePointer: 'models/candidate.json',
  rollout: 'rollouts/{version}.json',
  run: 'runs/{jobId}.json',
  trainingLock: 'locks/training.json',
  counterShard: 'counts/{counter}/shard-{shard}.json',
  indexMember: 'counts/{counter}/members/{imageId}',
} as const;

/** The top-level prefixes of the layout (what IAM grants and listings are scoped to). */
export const ARTIFACT_PREFIXES = {
  derived: 'derived/',
  quarantine: 'quarantine/',
  events: 'events/',
  deadLetters: 'dead-letters/',
  labels: 'labels/',
  pseudoLabels: 'pseudo-labels/',
  models: 'models/',
  rollouts: 'rollouts/',
  runs: 'runs/',
  locks: 'locks/',
  counts: 'counts/',
  layout: 'layout/',
  imports: 'imports/',
  catalog: 'catalog/',
} as const;

type Template = (typeof ARTIFACT_KEY_TEMPLATES)[keyof typeof ARTIFACT_KEY_TEMPLATES];

function fill(template: Template, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined || value === '' || value.includes('/')) throw new Error(`artifact key ${template}: bad ${name} ${JSON.stringify(value)}`);
    return value;
  });
}

const t = ARTIFACT_KEY_TEMPLATES;

export const artifactKeys = {
  derivedCanonical: (imageId: string) => fill(t.derivedCanonical, { imageId }),
  derivedViews: (imageId: string) => fill(t.derivedViews, { imageId }),
  derivedViewsV1: (imageId: string) => fill(t.derivedViewsV1, { imageId }),
  /** Every derived file of an image, of either layout (removal deletes them all). */
  derivedThumbnail: (imageId: string) => fill(t.derivedThumbnail, { imageId }),
  derivedFiles: (imageId: string) => [t.derivedCanonical, t.derivedViews, t.derivedViewsV1, t.derivedThumbnail].map((tpl) => fill(tpl, { imageId })),
  derivedLayout: t.derivedLayout,
  derivedMigration: t.derivedMigration,
  importFile: (importId: string, file: string) => fill(t.importFile, { importId, file }),
  derivedMeta: (imageId: string) => fill(t.derivedMeta, { imageId }),
  quarantine: (imageId: string) => fill(t.quarantine, { imageId }),
  catalogEntry: (rank: string, imageId: string) => fill(t.catalogEntry, { rank, imageId }),
  events: (imageId: string) => fill(t.events, { imageId }),
  deadLetter: (messageId: string) => fill(t.deadLetter, { messageId }),
  label: (imageId: string) => fill(t.label, { imageId }),
  pseudoLabels: (version: string) => fill(t.pseudoLabels, { version }),
  modelFile: (version: string, file: string) => fill(t.modelFile, { version, file }),
  manifest: (version: string) => fill(t.manifest, { version }),
  report: (version: string) => fill(t.report, { version }),
  servingPointer: t.servingPointer,
  candidatePointer: t.candidatePointer,
  rollout: (version: string) => fill(t.rollout, { version }),
  run: (jobId: string) => fill(t.run, { jobId }),
  trainingLock: t.trainingLock,
  counterShard: (counter: string, shard: number) => fill(t.counterShard, { counter, shard: String(shard) }),
  indexMember: (counter: string, imageId: string) => fill(t.indexMember, { counter, imageId }),
  runsPrefix: ARTIFACT_PREFIXES.runs,
  quarantinePrefix: ARTIFACT_PREFIXES.quarantine,
  labelsPrefix: ARTIFACT_PREFIXES.labels,
  modelsPrefix: ARTIFACT_PREFIXES.models,
  derivedPrefix: ARTIFACT_PREFIXES.derived,
  importsPrefix: ARTIFACT_PREFIXES.imports,
  catalogPrefix: ARTIFACT_PREFIXES.catalog,
};

/** The layout as the JSON document `schemas/artifact-keys.json` (read by the trainer's tests). */
export function artifactLayoutDocument(): string {
  return `${JSON.stringify({ templates: ARTIFACT_KEY_TEMPLATES, prefixes: ARTIFACT_PREFIXES }, null, 2)}\n`;
}

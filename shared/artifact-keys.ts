/** Keys in the artifacts bucket (the data layout of ARCHITECTURE.md). */
export const artifactKeys = {
  derivedViews: (imageId: string) => `derived/${imageId}/views.npy`,
  derivedMeta: (imageId: string) => `derived/${imageId}/meta.json`,
  quarantine: (imageId: string) => `quarantine/${imageId}.json`,
  events: (imageId: string) => `events/${imageId}.json`,
  deadLetter: (messageId: string) => `dead-letters/${messageId}.json`,
  label: (imageId: string) => `labels/${imageId}.json`,
  pseudoLabels: (version: string) => `pseudo-labels/${version}/pseudo-labels.json`,
  rollout: (version: string) => `rollouts/${version}.json`,
  run: (jobId: string) => `runs/${jobId}.json`,
  runsPrefix: 'runs/',
  quarantinePrefix: 'quarantine/',
  labelsPrefix: 'labels/',
};

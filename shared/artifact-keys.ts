/** Keys in the artifacts bucket (the data layout of ARCHITECTURE.md). */
export const artifactKeys = {
  derivedViews: (imageId: string) => `derived/${imageId}/views.npy`,
  derivedMeta: (imageId: string) => `derived/${imageId}/meta.json`,
  quarantine: (imageId: string) => `quarantine/${imageId}.json`,
  label: (imageId: string) => `labels/${imageId}.json`,
  quarantinePrefix: 'quarantine/',
  labelsPrefix: 'labels/',
};

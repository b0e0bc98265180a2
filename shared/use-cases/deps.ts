/** The pieces use cases' dependencies are composed of: each names only what its use case touches. */
import type { IndexResolver } from '../index-resolver';
import type { ModelRegistry } from '../model-registry';
import type { ObjectStore } from '../ports/object-store';

export type { Clock } from '../clock';

/** The artifacts bucket (derived data, records, models). */
export interface ArtifactsDeps {
  store: ObjectStore;
  artifactsBucket: string;
}

/** Both buckets: user uploads in `imagesBucket`, everything derived in `artifactsBucket`. */
export interface BucketsDeps extends ArtifactsDeps {
  imagesBucket: string;
}

/** Published models (loaded encoders) and their vector indexes. */
export interface ModelsDeps {
  models: ModelRegistry;
  indexes: IndexResolver;
}

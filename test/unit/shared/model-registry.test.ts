import { ModelRegistry, SERVING_POINTER_KEY, CANDIDATE_POINTER_KEY } from '../../../shared/model-registry';
import { FakeEncoderFactory, InMemoryObjectStore } from '../../support/fakes';

const BUCKET = 'artifacts';
const pointer = (version: string) => ({ version, index: `embeddings-${version}`, updatedAt: '2026-11-28T00:00:00.000Z' });

describe('ModelRegistry', () => {
  let store: InMemoryObjectStore;
  let clock: number;
  let registry: ModelRegistry;

  beforeEach(() => {
    store = new InMemoryObjectStore();
    clock = 0;
    registry = new ModelRegistry(store, BUCKET, new FakeEncoderFactory(), { pointerTtlMs: 2000, now: () => clock });
  });

  describe('servingPointer', () => {
    it('sees a model published by someone else right after answering "none", within the TTL', async () => {
      expect(await registry.servingPointer()).toBeUndefined();
      await store.put(BUCKET, SERVING_POINTER_KEY, JSON.stringify(pointer('v0')));
      clock += 1;
      expect((await registry.servingPointer())?.version).toBe('v0');
    });

    it('reuses an existing pointer for the TTL, then reads it again', async () => {
      await store.put(BUCKET, SERVING_POINTER_KEY, JSON.stringify(pointer('v0')));
      expect((await registry.servingPointer())?.version).toBe('v0');
      await store.put(BUCKET, SERVING_POINTER_KEY, JSON.stringify(pointer('v1')));
      clock += 1999;
      expect((await registry.servingPointer())?.version).toBe('v0');
      clock += 1;
      expect((await registry.servingPointer())?.version).toBe('v1');
    });
  });

  describe('setServing and clearCandidate', () => {
    it('are visible to this registry at once, whatever it had cached', async () => {
      await store.put(BUCKET, SERVING_POINTER_KEY, JSON.stringify(pointer('v0')));
      await store.put(BUCKET, CANDIDATE_POINTER_KEY, JSON.stringify(pointer('v1')));
      expect((await registry.servingPointer())?.version).toBe('v0');
      expect((await registry.candidatePointer())?.version).toBe('v1');

      await registry.setServing(pointer('v1'));
      await registry.clearCandidate();

      expect((await registry.servingPointer())?.version).toBe('v1');
      expect(await registry.candidatePointer()).toBeUndefined();
      expect(JSON.parse((await store.get(BUCKET, SERVING_POINTER_KEY))!.toString()).version).toBe('v1');
      expect(await store.get(BUCKET, CANDIDATE_POINTER_KEY)).toBeUndefined();
    });
  });
});

/** Opens the vector index named by a model pointer, creating it once per container when needed. */
import type { ModelPointer } from './schemas';
import type { VectorIndex, VectorStore } from './ports/vector-index';

export class IndexResolver {
  private readonly ensured = new Map<string, Promise<VectorIndex>>();

  constructor(readonly store: VectorStore) {}

  /** The index for a pointer, created with `dimension` if it does not exist yet. */
  forWriting(pointer: ModelPointer, dimension: number): Promise<VectorIndex> {
    let index = this.ensured.get(pointer.index);
    if (!index) {
      index = this.store.ensureIndex(pointer.index, dimension);
      this.ensured.set(pointer.index, index);
      index.catch(() => this.ensured.delete(pointer.index));
    }
    return index;
  }

  private readonly opened = new Map<string, { index: VectorIndex; until: number }>();

  /**
   * The index for a pointer, or undefined when nothing has been written to it yet. An index found is
   * remembered for a minute (one GetIndex per query saved; indexes are only deleted once retired).
   */
  async forReading(pointer: ModelPointer): Promise<VectorIndex | undefined> {
    const ensured = this.ensured.get(pointer.index);
    if (ensured) return ensured;
    const cached = this.opened.get(pointer.index);
    if (cached && cached.until > Date.now()) return cached.index;
    const index = await this.store.openIndex(pointer.index);
    if (index) this.opened.set(pointer.index, { index, until: Date.now() + 60_000 });
    return index;
  }
}

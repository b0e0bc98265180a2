/**
 * Working images augment has just stored, handed to embed in the same process. The embedded stack
 * runs both, and embed then skips reading and decoding the canonical PNG it would otherwise load
 * (lossless: the pixels are the same). In AWS the two are separate functions and nothing is handed
 * over; embed reads the stored file as always.
 *
 * An entry serves only the upload it was made from (ETag and sequencer, as the derived meta records
 * them), and only once. It is bounded by bytes: the oldest entries go first, and a miss reads the file.
 */
import type { RgbImage } from './image/decode';

interface Entry {
  etag: string;
  sequencer: string;
  image: RgbImage;
}

export class CanonicalHandoff {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(readonly maxBytes = 32 * 2 ** 20) {}

  offer(imageId: string, etag: string, sequencer: string, image: RgbImage): void {
    this.drop(imageId);
    if (image.rgb.length > this.maxBytes) return;
    this.entries.set(imageId, { etag, sequencer, image });
    this.bytes += image.rgb.length;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  /** The working image of exactly this upload, if it was offered and not taken yet. */
  take(imageId: string, etag: string, sequencer: string): RgbImage | undefined {
    const entry = this.entries.get(imageId);
    if (!entry) return undefined;
    this.drop(imageId);
    return entry.etag === etag && entry.sequencer === sequencer ? entry.image : undefined;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  private drop(imageId: string): void {
    const entry = this.entries.get(imageId);
    if (!entry) return;
    this.entries.delete(imageId);
    this.bytes -= entry.image.rgb.length;
  }
}

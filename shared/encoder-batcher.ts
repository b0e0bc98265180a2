/**
 * Coalesces concurrent single-image embedding requests into batched encoder calls: records of an
 * SQS batch are processed in parallel, each asking for one embedding, and the encoder sees them
 * as one batch.
 */
import type { Encoder } from './ports/encoder';

interface Waiting {
  input: Float32Array;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class EncoderBatcher {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(
    private readonly encoder: Encoder,
    private readonly maxBatch = 64,
  ) {}

  embedOne(input: Float32Array): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.waiting;
    this.waiting = [];
    for (let i = 0; i < all.length; i += this.maxBatch) {
      const chunk = all.slice(i, i + this.maxBatch);
      this.encoder.embed(chunk.map((w) => w.input)).then(
        (out) => {
          for (const [j, w] of chunk.entries()) w.resolve(out[j]!);
        },
        (err) => {
          for (const w of chunk) w.reject(err);
        },
      );
    }
  }
}

// Exact-size reads over a stream of chunks, for the tar reader: headers come whole, file bodies come
// as the chunks arrive so a large file never sits in memory.
import { CellhostError } from '../../runtime/core/errors.ts';

export class StreamReader {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private total = 0;

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    /** Called on every chunk with the running total, so the caller can stop a decompression bomb. */
    private readonly onProgress: (total: number) => void,
    /** Turns a stream error (gzip corrupt, read failure) into the caller's error. */
    private readonly mapError: (err: unknown) => Error,
  ) {}

  private get available(): number {
    return this.buf.length - this.off;
  }

  private async pull(): Promise<boolean> {
    let next: IteratorResult<Buffer>;
    try {
      next = await this.source.next();
    } catch (err) {
      throw err instanceof CellhostError ? err : this.mapError(err);
    }
    if (next.done) return false;
    const chunk = next.value;
    this.total += chunk.length;
    this.onProgress(this.total);
    this.buf = this.available === 0 ? chunk : Buffer.concat([this.buf.subarray(this.off), chunk]);
    this.off = 0;
    return true;
  }

  /** Exactly n bytes, or null at a clean end of stream; a partial read is a truncated archive. */
  async read(n: number, truncated: () => Error): Promise<Buffer | null> {
    while (this.available < n) {
      if (!(await this.pull())) {
        if (this.available === 0) return null;
        throw truncated();
      }
    }
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** n bytes as they arrive. */
  async *chunks(n: number, truncated: () => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.available === 0 && !(await this.pull())) throw truncated();
      const take = Math.min(left, this.available);
      const out = this.buf.subarray(this.off, this.off + take);
      this.off += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number, truncated: () => Error): Promise<void> {
    for await (const _ of this.chunks(n, truncated)) {
      // discarded: padding or bodies of entries that carry no file data
    }
  }
}

// Splits a child's byte stream into lines and keeps the last few for error pages.

export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void, private readonly maxLine = 16 * 1024) {}

  push(chunk: Buffer | string): void {
    const text = this.rest + chunk.toString();
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    if (this.rest.length > this.maxLine) {
      lines.push(this.rest);
      this.rest = '';
    }
    for (const line of lines) this.onLine(line.length > this.maxLine ? line.slice(0, this.maxLine) + '…' : line);
  }

  flush(): void {
    if (this.rest) this.onLine(this.rest);
    this.rest = '';
  }
}

export class TailBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly max = 20) {}
  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  get(): string[] {
    return [...this.lines];
  }
}

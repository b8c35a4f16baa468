export interface CliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: progress bars and colours go there */
  isTTY: boolean;
  /** asks a question on the terminal and returns the answer; absent when there is no terminal to ask */
  prompt?(question: string): Promise<string>;
  /** ends long-running verbs (logs -f) */
  signal?: AbortSignal;
}

/** a usage error: printed with the verb's help, exit code 2 */
export class UsageError extends Error {}

/** what --json prints: the value as indented JSON, one document */
export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + '\n');
}

export interface CliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
}

/** a usage error: printed with the verb's help, exit code 2 */
export class UsageError extends Error {}

// The executable's entry: `cellhost VERB ...`.
import readline from 'node:readline/promises';
import { runCli } from './cli/index.ts';
import type { CliIo } from './cli/io.ts';

// questions need someone at a terminal to answer them: without one, verbs that ask refuse instead
const canAsk = Boolean(process.stdin.isTTY && process.stderr.isTTY);

const io: CliIo = {
  env: process.env,
  cwd: process.cwd(),
  out: (t: string) => void process.stdout.write(t),
  err: (t: string) => void process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
  prompt: canAsk
    ? async (question) => {
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        try {
          return await rl.question(question);
        } finally {
          rl.close();
        }
      }
    : undefined,
};

runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
    // a lingering keep-alive socket or timer must not hold the exit
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err) => {
    process.stderr.write(`cellhost: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

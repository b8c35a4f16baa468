// The executable's entry: `cellhost VERB ...`.
// First: it extends zod with .openapi(), which the API's routes call on schemas made elsewhere
// (control/service-settings.ts); a schema made before the extension has no such method.
import '@hono/zod-openapi';
import { runCli } from './cli/index.ts';

const io = {
  env: process.env,
  cwd: process.cwd(),
  out: (t: string) => void process.stdout.write(t),
  err: (t: string) => void process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
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

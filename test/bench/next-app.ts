// A Next.js app for the prewarmed rows: one server-rendered page (getServerSideProps, so every
// request renders), built once with `next build` in Next's standalone output and kept in a cache
// dir named by its sources, so later runs reuse it. A fresh clone builds it on its first run
// (npm install and next build: a few minutes, and the npm registry must be reachable). The
// deployed image is the standalone server with its node_modules, uploaded as built.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';

const FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'bench-next', private: true, dependencies: { next: '15', react: '19', 'react-dom': '19' } }, null, 2),
  'next.config.js': "module.exports = { output: 'standalone' };\n",
  'pages/index.js': `export default function Home({ now }) {
  return (
    <main>
      <h1>Hello from Next.js</h1>
      <p>rendered at {now}</p>
    </main>
  );
}

export async function getServerSideProps() {
  return { props: { now: new Date().toISOString() } };
}
`,
};

const run = (cmd: string, args: string[], cwd: string, timeoutMs: number) =>
  new Promise<void>((resolve, reject) =>
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', npm_config_fund: 'false', npm_config_audit: 'false' } }, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).slice(-2000) || err.message}`)) : resolve(),
    ),
  );

export interface NextApp {
  /** the standalone server's dir: `node server.js` serves the app */
  dir: string;
  /** the archive to deploy (the standalone dir, node_modules included) */
  archive(): Promise<Uint8Array>;
}

/** the built app (from the cache, or built now), or why there is none */
export async function prepareNextApp(log: (line: string) => void): Promise<NextApp | string> {
  const hash = createHash('sha256').update(JSON.stringify(FILES)).digest('hex').slice(0, 12);
  const root = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'cellhost-bench', `next-${hash}`);
  const standalone = path.join(root, '.next', 'standalone');
  if (!fs.existsSync(path.join(standalone, 'server.js'))) {
    log(`next: building the Next.js app once in ${root} (npm install, next build)`);
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
    for (const [f, text] of Object.entries(FILES)) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    }
    try {
      await run('npm', ['install', '--no-audit', '--no-fund'], root, 600_000);
      await run('node', ['node_modules/next/dist/bin/next', 'build'], root, 900_000);
      // the standalone server serves static files from beside itself
      fs.cpSync(path.join(root, '.next', 'static'), path.join(standalone, '.next', 'static'), { recursive: true });
    } catch (err) {
      fs.rmSync(root, { recursive: true, force: true });
      return `the Next.js app could not be built: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  return {
    dir: standalone,
    async archive() {
      const chunks: Buffer[] = [];
      // node_modules included: the image is the standalone server as built (packDirectory, like
      // `cellhost deploy`, leaves node_modules for the build to install)
      const stream = tar.c({ gzip: true, cwd: standalone, portable: true }, ['.']);
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
}

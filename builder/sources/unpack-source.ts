// Source intake for a deployment: an uploaded tar.gz or zip, or a git URL and ref, unpacked into the
// build's fresh directory. Whatever the input, nothing is written outside destDir, and a refused
// source leaves destDir as empty as it was given.
import { stat } from 'node:fs/promises';
import { CellhostError, isCellhostError } from '../../runtime/core/errors.ts';
import { silentLogger, type Logger } from '../../runtime/core/log.ts';
import { cloneGitSource, redactUrl, type GitAuth, type GitSandbox } from './git-source.ts';
import { checkGitUrl, type GitUrlPolicy } from './git-url.ts';
import { createSourceTree, type SourceLimits } from './source-tree.ts';
import { readTarInto } from './tar-reader.ts';
import { readZipInto } from './zip-reader.ts';

export type SourceInput =
  | { kind: 'tar.gz'; file: string } // path of the uploaded archive on disk
  | { kind: 'zip'; file: string }
  | { kind: 'git'; url: string; ref?: string; auth?: GitAuth };

export interface UnpackOptions {
  limits: SourceLimits;
  /** Leapcell's "Root Directory": only this subdirectory of the source becomes the source. */
  rootDir?: string;
  log?: Logger;
  signal?: AbortSignal;
  /** git only: how long the clone may take (default 5 minutes). */
  gitTimeoutMs?: number;
  /** git only: which URLs are cloned (default https, ssh and scp-style only). */
  gitPolicy?: GitUrlPolicy;
  /**
   * git only: a sandbox to clone in, set up for the directory the clone goes to; released once
   * the clone has ended. Absent: git runs on the host.
   */
  gitSandbox?(dir: string): Promise<GitSandbox & { release(): Promise<void> }>;
  /** git only, on the host: the environment git runs with (default this process's); GIT_* overrides are dropped. */
  gitEnv?: NodeJS.ProcessEnv;
}

export interface UnpackResult {
  /** Regular files and symlinks in destDir. */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** git only: the commit that was checked out. */
  commit?: string;
}

async function assertUpload(file: string): Promise<void> {
  const st = await stat(file).catch((err: unknown) => {
    throw new CellhostError('ERR_INTERNAL', `uploaded archive is missing: ${file}`, { cause: err });
  });
  if (st.size === 0) throw new CellhostError('ERR_SOURCE_INVALID', 'the upload is empty');
}

function describeInput(input: SourceInput): Record<string, unknown> {
  return input.kind === 'git' ? { kind: 'git', url: redactUrl(input.url), ref: input.ref } : { kind: input.kind };
}

/** Unpacks into destDir (which exists and is empty). Never writes outside destDir. */
export async function unpackSource(input: SourceInput, destDir: string, opts: UnpackOptions): Promise<UnpackResult> {
  const log = opts.log ?? silentLogger;
  const started = Date.now();
  const tree = await createSourceTree(destDir, { limits: opts.limits, signal: opts.signal });
  try {
    let commit: string | undefined;
    if (input.kind === 'git') {
      checkGitUrl(input.url, opts.gitPolicy);
      const sandbox = await opts.gitSandbox?.(tree.stagingDir);
      try {
        ({ commit } = await cloneGitSource(input.url, input.ref, tree.stagingDir, {
          timeoutMs: opts.gitTimeoutMs,
          policy: opts.gitPolicy,
          sandbox,
          env: opts.gitEnv,
          auth: input.auth,
          signal: opts.signal,
          log,
        }));
      } finally {
        await sandbox?.release();
      }
      await tree.adoptStagingContents();
    } else {
      await assertUpload(input.file);
      if (input.kind === 'tar.gz') await readTarInto(input.file, tree, opts.limits, opts.signal);
      else await readZipInto(input.file, tree, opts.limits, opts.signal);
    }
    // A git checkout is the repository as it is; only archives get their GitHub-style wrapper removed.
    const counts = await tree.finish({ rootDir: opts.rootDir, stripSingleTopDir: input.kind !== 'git' });
    log.info('source.unpacked', { ...describeInput(input), ...counts, commit, ms: Date.now() - started });
    return commit === undefined ? counts : { ...counts, commit };
  } catch (err) {
    await tree.discard();
    log.warn('source.refused', {
      ...describeInput(input),
      code: isCellhostError(err) ? err.code : undefined,
      reason: err instanceof Error ? err.message : String(err),
    });
    throw err;
  }
}

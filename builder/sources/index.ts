// Source intake: safe unpacking of uploads and git checkouts, and packing a directory for the CLI.
export { detectArchiveKind, type ArchiveKind } from './archive-kind.ts';
export { packDirectory, IGNORE_FILE } from './pack-directory.ts';
export { DEFAULT_GIT_TIMEOUT_MS } from './git-source.ts';
export { checkGitUrl, DEFAULT_GIT_POLICY, type GitUrl, type GitUrlPolicy } from './git-url.ts';
export { DEFAULT_SOURCE_LIMITS, type SourceLimits } from './source-tree.ts';
export { unpackSource, type SourceInput, type UnpackOptions, type UnpackResult } from './unpack-source.ts';

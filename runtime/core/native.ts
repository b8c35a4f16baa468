// Native addons. From source they load the usual way; inside the single executable they are
// SEA assets written once to a cache dir named by content hash, then loaded with process.dlopen.
// build.mjs owns the other half of this (the asset list and the node-pty redirect).

/** The value for better-sqlite3's `nativeBinding` option: undefined means "load normally". */
export function sqliteNativeBinding(): string | object | undefined {
  return undefined;
}

// The host tools an export runs: maintained OCI tools instead of a registry client of our own.
import { findBinary } from '../../builder/runtimes/index.ts';
import { CellhostError } from '../core/errors.ts';

export interface ExportTool {
  bin: string;
  /** the Debian package that provides it */
  pkg: string;
  does: string;
}

export const EXPORT_TOOLS: readonly ExportTool[] = [
  { bin: 'skopeo', pkg: 'skopeo', does: 'pulls base images and pushes images (registry API, no Docker daemon)' },
  { bin: 'umoci', pkg: 'umoci', does: 'adds the app layer and the image config to an OCI layout' },
];

export function findMissingExportTools(searchPath?: readonly string[]): ExportTool[] {
  return EXPORT_TOOLS.filter((t) => !findBinary(t.bin, searchPath));
}

/** throws ERR_EXPORT_TOOL_MISSING naming what to install */
export function checkExportTools(searchPath?: readonly string[]): void {
  const missing = findMissingExportTools(searchPath);
  if (missing.length) {
    throw new CellhostError(
      'ERR_EXPORT_TOOL_MISSING',
      `export needs ${missing.map((t) => t.bin).join(' and ')} on this host: install ${missing.length > 1 ? 'them' : 'it'} (apt-get install ${missing.map((t) => t.pkg).join(' ')})`,
    );
  }
}

// One service's image in the OCI layout: its base (pulled once per runtime, by digest), the app
// layer on top, the config that starts it as it starts here.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeAppLayer } from './app-layer.ts';
import { imageConfigFor } from './image-config.ts';
import type { BaseImage, ExportItem } from './model.ts';
import { appendLayer, collectGarbage, readTagDigest, removeTag, writeImageConfig } from './umoci.ts';

export const baseTag = (runtime: string) => `base-${runtime}`;

/** builds `layout:<service>` on `layout:base-<runtime>`; returns the image's manifest digest */
export async function buildServiceImage(item: ExportItem, base: BaseImage, layout: string, workDir: string): Promise<string> {
  const name = item.service.name;
  const tarFile = path.join(workDir, `${name}.layer.tar`);
  try {
    writeAppLayer(item.imageDir, tarFile, base.links);
    await appendLayer(layout, baseTag(item.service.runtime), name, tarFile, {
      created: item.builtAt,
      createdBy: `cellhost export: ${name} deployment ${item.deploymentId} at /app`,
    });
  } finally {
    await fs.rm(tarFile, { force: true });
  }
  await writeImageConfig(layout, name, imageConfigFor(item, base));
  return readTagDigest(layout, name);
}

/** drops the base tags from a layout that leaves the machine (their blobs stay, used by the images) */
export async function dropBaseTags(layout: string, runtimes: readonly string[]): Promise<void> {
  for (const r of runtimes) await removeTag(layout, baseTag(r));
  await collectGarbage(layout);
}

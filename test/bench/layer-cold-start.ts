// Cold start with a system layer against the same app without one: the python app deployed
// twice, once with a build that installs a package (a .deb built in the build, so no network is
// needed: dpkg changes /usr, /etc and /var/lib, as apt-get install would), taking turns, each
// scaled to zero and started by one request. What the layer costs is the difference: the
// instance binds its read-only overlays instead of the host's /usr and /etc, and every file the
// app opens under them is looked up through the overlay.
import { getViaRouter, type BenchPlatform } from './platform.ts';
import { readColdStartEvents, RUNS, STANDBY_SETTLE_MS, waitScaledToZero, type ColdApp } from './cold-start.ts';
import { median, sleep } from './stats.ts';

export interface LayerColdStartResult {
  runs: number;
  /** request → first 200, medians */
  withoutMs: number;
  withMs: number;
  /** the platform's own cold_start events (instance start → port accepting), medians */
  withoutEventMs: number;
  withEventMs: number;
  /** what the layer's build installed, as the platform reports it */
  packages: string;
}

/** installs a package of its own making: a file in /usr, one in /etc, dpkg's database in /var/lib */
export const LAYER_BUILD = [
  'mkdir -p /tmp/pkg/DEBIAN /tmp/pkg/usr/share/cellhost-bench /tmp/pkg/etc',
  "printf 'Package: cellhost-bench\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: bench <bench@example.org>\\nDescription: a package for the layer benchmark\\n' > /tmp/pkg/DEBIAN/control",
  'echo bench > /tmp/pkg/usr/share/cellhost-bench/data',
  'echo bench=1 > /tmp/pkg/etc/cellhost-bench.conf',
  'dpkg-deb --build /tmp/pkg /tmp/bench.deb',
  'dpkg -i /tmp/bench.deb',
].join('\n');

export async function benchLayerColdStart(platform: BenchPlatform, python: ColdApp): Promise<LayerColdStartResult> {
  const plain = 'cold-py-plain';
  const layered = 'cold-py-layer';
  await platform.deploy(plain, python.dir, { ...python.settings, idleTimeoutS: 0.1 });
  const dep = await platform.deploy(layered, python.dir, { ...python.settings, buildCommand: LAYER_BUILD, idleTimeoutS: 0.1 });
  if (!dep.systemLayer) throw new Error(`the layered deployment has no system layer (${JSON.stringify(dep.error ?? dep.status)})`);
  const samples: Record<string, number[]> = { [plain]: [], [layered]: [] };
  // round 0 warms both (and mounts the layer's views, once per deployment) and is not counted
  for (let i = 0; i <= RUNS; i++) {
    for (const service of i % 2 ? [layered, plain] : [plain, layered]) {
      await waitScaledToZero(platform, service);
      await sleep(STANDBY_SETTLE_MS);
      const t0 = performance.now();
      const status = await getViaRouter(platform.routerPort, `${service}.localhost`, false, 20_000);
      const ms = performance.now() - t0;
      if (status !== 200) throw new Error(`cellhost answered ${status} for ${service}`);
      if (i > 0) samples[service]!.push(ms);
    }
  }
  const events = async (s: string) => median((await readColdStartEvents(platform, s)).slice(-RUNS));
  const added = (dep.systemLayer.packages.added as { name: string; version: string }[]).map((p) => `${p.name} ${p.version}`).join(', ');
  return {
    runs: RUNS,
    withoutMs: median(samples[plain]!),
    withMs: median(samples[layered]!),
    withoutEventMs: await events(plain),
    withEventMs: await events(layered),
    packages: added || 'none',
  };
}

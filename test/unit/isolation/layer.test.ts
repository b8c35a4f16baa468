// Isolation as a list of layers: each is probed, the supported ones start and wrap the launchers
// below them (outermost first in the list), one that cannot is left out with its reasons, and
// doctor's probe reports what a start would use.
import { describe, expect, it } from 'vitest';
import type { BuildLauncher } from '../../../builder/launcher.ts';
import type { Launcher } from '../../../runtime/instances/launcher.ts';
import { probeIsolation, startIsolation, type IsolationLayer } from '../../../runtime/isolation/layer.ts';

/** a launcher whose prepare() names the layers it went through, innermost first */
const named = (name: string, below?: Launcher): Launcher => ({
  prepare: async (spec) => {
    const inner = below ? await below.prepare(spec) : { argv: [] as string[], env: {}, cwd: '/', upstream: { host: '127.0.0.1', port: 1 }, release: async () => {} };
    return { ...inner, argv: [...inner.argv, name] };
  },
});
const plainBuild: BuildLauncher = { prepare: async () => ({ argv: ['plain'], env: {}, cwd: '/' }), seal: async () => [] };

function fakeLayer(name: string, opts: { supported?: boolean; startFails?: string; without?: string; log?: string[] } = {}): IsolationLayer {
  const { supported = true, log = [] } = opts;
  return {
    features: [name, `${name}-extra`],
    without: opts.without,
    probe: async () => {
      log.push(`probe ${name}`);
      return { supported, features: { [name]: supported, [`${name}-extra`]: true }, reasons: supported ? [] : [`${name} is missing`] };
    },
    start: async () => {
      log.push(`start ${name}`);
      if (opts.startFails) throw new Error(opts.startFails);
      return {
        wrap: (below) => named(name, below),
        wrapBuild: (below) => ({
          ...below,
          prepare: async (spec) => {
            const inner = await below.prepare(spec);
            return { ...inner, argv: [...inner.argv, name] };
          },
        }),
        dispose: async () => void log.push(`dispose ${name}`),
      };
    },
  };
}

const spec = { instanceId: 'i', service: 's', deploymentId: 'd', imageDir: '/x', runtime: 'node' as const, command: 'true', port: 8080, memoryMb: 128, env: {} };
const buildSpec = { deploymentId: 'd', service: 's', runtime: 'node' as const, plan: 'hobby' as const, dir: '/x', script: 'true', env: {}, cacheDir: '/c' };

describe('isolation layers', () => {
  it('wraps the plain launchers in every supported layer, outermost first, and disposes innermost first', async () => {
    const log: string[] = [];
    const iso = await startIsolation({ layers: [fakeLayer('outer', { log }), fakeLayer('inner', { log })] }, { launcher: named('plain'), buildLauncher: plainBuild });
    expect((await iso.launcher.prepare(spec)).argv).toEqual(['plain', 'inner', 'outer']);
    expect((await iso.buildLauncher.prepare(buildSpec)).argv).toEqual(['plain', 'inner', 'outer']);
    expect(iso.report).toEqual({ features: { outer: true, 'outer-extra': true, inner: true, 'inner-extra': true }, reasons: [] });
    await iso.dispose();
    expect(log).toEqual(['probe outer', 'start outer', 'probe inner', 'start inner', 'dispose inner', 'dispose outer']);
  });

  it('leaves out a layer the host does not support, with its reasons and what runs without it', async () => {
    const log: string[] = [];
    const plan = { layers: [fakeLayer('outer', { log }), fakeLayer('inner', { supported: false, without: 'runs bare', log })] };
    const iso = await startIsolation(plan, { launcher: named('plain'), buildLauncher: plainBuild });
    expect((await iso.launcher.prepare(spec)).argv).toEqual(['plain', 'outer']);
    expect(iso.report.reasons).toEqual(['inner is missing', 'runs bare']);
    expect(iso.report.features.inner).toBe(false);
    expect(log).not.toContain('start inner');
    // doctor's probe says the same, and starts nothing
    const probeLog: string[] = [];
    const probed = await probeIsolation({ layers: [fakeLayer('outer', { log: probeLog }), fakeLayer('inner', { supported: false, without: 'runs bare', log: probeLog })] });
    expect(probed).toEqual(iso.report);
    expect(probeLog).toEqual(['probe outer', 'probe inner']);
  });

  it('a layer that fails to start is left out: its features off, its error the reason', async () => {
    const iso = await startIsolation({ layers: [fakeLayer('outer', { startFails: 'outer unusable: EBUSY', without: 'no limits' })] }, { launcher: named('plain'), buildLauncher: plainBuild });
    expect((await iso.launcher.prepare(spec)).argv).toEqual(['plain']);
    expect(iso.report).toEqual({ features: { outer: false, 'outer-extra': false }, reasons: ['outer unusable: EBUSY', 'no limits'] });
  });

  it('a feature a started layer could not set up after all is off in the report, with its reason; the layer stays', async () => {
    const layer = fakeLayer('outer');
    const start = layer.start.bind(layer);
    layer.start = async () => ({ ...(await start()), found: { features: { 'outer-extra': false }, reasons: ['outer-extra: not here after all'] } });
    const iso = await startIsolation({ layers: [layer] }, { launcher: named('plain'), buildLauncher: plainBuild });
    expect((await iso.launcher.prepare(spec)).argv).toEqual(['plain', 'outer']);
    expect(iso.report).toEqual({ features: { outer: true, 'outer-extra': false }, reasons: ['outer-extra: not here after all'] });
  });

  it('off: every feature listed as off with the reason, and no layer probed', async () => {
    const log: string[] = [];
    const plan = { layers: [fakeLayer('outer', { log })], off: 'isolation is off' };
    const iso = await startIsolation(plan, { launcher: named('plain'), buildLauncher: plainBuild });
    expect(iso.report).toEqual({ features: { outer: false, 'outer-extra': false }, reasons: ['isolation is off'] });
    expect(await probeIsolation(plan)).toEqual(iso.report);
    expect(log).toEqual([]);
  });
});

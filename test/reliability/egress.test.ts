// Where an instance's outbound traffic may go: from a probe app, the public path (a test-made
// "outside" namespace on the benchmarking range) answers, and a test-made "LAN" namespace on
// 192.168.x (a homelab's router or NAS) does not, until CELLHOST_EGRESS_ALLOW opens its range.
// Both namespaces hang off veths this test makes: no packet leaves the machine.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { setUpOutside, type Outside } from '../helpers/outside.ts';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available;
const tag = process.pid % 50;

describe('egress prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, iproute2 and a NAT backend are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
  });
});

describe.skipIf(!ready)('an instance reaching out', () => {
  let outside: Outside | undefined;
  let lan: Outside | undefined;
  const servers: TestServer[] = [];

  const probeOn = async (env: Record<string, string> = {}) => {
    const server = await startTestServer({ env });
    servers.push(server);
    const dep = await server.deploy('probe', path.join(FIXTURES, 'node-probe'), { startCommand: 'node app.js', idleTimeoutS: 60 });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    return async (host: string, port: number): Promise<string> => {
      const r = await server.app('probe', `/connect?host=${host}&port=${port}&read=1&ms=1000`);
      expect(r.status, r.text).toBe(200);
      return r.json.result as string;
    };
  };

  beforeAll(async () => {
    outside = await setUpOutside({ ns: `egout${tag}`, ifName: `egout${tag}`, net24: `198.18.${200 + tag}` });
    lan = await setUpOutside({ ns: `eglan${tag}`, ifName: `eglan${tag}`, net24: `192.168.${200 + tag}` });
  });

  afterAll(async () => {
    for (const s of servers) await s.close();
    await outside?.close();
    await lan?.close();
  });

  it('LAN address unreachable; the public path works', async () => {
    const connect = await probeOn();
    // masqueraded: the outside sees the host's end of its link, not the instance
    expect(await connect(outside!.addr, outside!.port)).toBe(`data:${outside!.hostAddr}`);
    expect(await connect(lan!.addr, lan!.port)).toBe('timeout');
  });

  it('LAN address reachable once CELLHOST_EGRESS_ALLOW names its range', async () => {
    const connect = await probeOn({ CELLHOST_EGRESS_ALLOW: `192.168.${200 + tag}.0/24` });
    expect(await connect(lan!.addr, lan!.port)).toBe(`data:${lan!.hostAddr}`);
    expect(await connect(outside!.addr, outside!.port)).toBe(`data:${outside!.hostAddr}`);
  });
});

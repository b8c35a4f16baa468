// Where a starting app listens: /proc's TCP tables decoded, only the app's own sockets kept, and
// what to tell the user when that is not where the platform connects.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { describeListenProblem, listeningSockets, parseTcpTable } from '../../../runtime/instances/listeners.ts';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

describe('parseTcpTable', () => {
  it('keeps listening sockets with their address, port and inode', () => {
    const table =
      HEAD +
      '   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  2000     0 111 1 0 100 0 0 10 0\n' +
      '   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  2000     0 222 1 0 100 0 0 10 0\n' +
      '   2: 020DD50A:1F90 010DD50A:D431 01 00000000:00000000 00:00000000 00000000  2000     0 333 1 0 100 0 0 10 0\n';
    expect(parseTcpTable(table)).toEqual([
      { address: '0.0.0.0', port: 3000, inode: '111' },
      { address: '127.0.0.1', port: 8080, inode: '222' },
    ]);
  });

  it('decodes IPv6 wildcard, loopback and IPv4-mapped addresses', () => {
    const v6 =
      HEAD +
      '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 444 1\n' +
      '   1: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 0 0 0 0 0 555 1\n' +
      '   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 666 1\n';
    expect(parseTcpTable(v6).map((l) => [l.address, l.port])).toEqual([
      ['::', 8080],
      ['::1', 3000],
      ['127.0.0.1', 80],
    ]);
  });
});

describe('describeListenProblem', () => {
  const sandboxed = { host: '10.213.0.2', port: 8080 };
  it('says nothing while the app listens nowhere, or where the platform connects', () => {
    expect(describeListenProblem([], sandboxed, 8080)).toBeNull();
    expect(describeListenProblem([{ address: '0.0.0.0', port: 8080 }], sandboxed, 8080)).toBeNull();
    expect(describeListenProblem([{ address: '::', port: 8080 }, { address: '127.0.0.1', port: 9229 }], sandboxed, 8080)).toBeNull();
    expect(describeListenProblem([{ address: '10.213.0.2', port: 8080 }], sandboxed, 8080)).toBeNull();
    expect(describeListenProblem([{ address: '127.0.0.1', port: 41234 }], { host: '127.0.0.1', port: 41234 }, 8080)).toBeNull();
  });

  it('names the port the app listens on and the two ways out', () => {
    expect(describeListenProblem([{ address: '0.0.0.0', port: 3000 }], sandboxed, 8080)).toBe(
      "the app listens on :3000; this service's port is 8080 — set the port to 3000 or listen on $PORT",
    );
    expect(describeListenProblem([{ address: '0.0.0.0', port: 3000 }, { address: '::', port: 3001 }], sandboxed, 8080)).toMatch(/listens on :3000, :3001; .*set the port to the one it serves on/);
  });

  it('names a loopback-only listener on the right port', () => {
    expect(describeListenProblem([{ address: '127.0.0.1', port: 8080 }], sandboxed, 8080)).toMatch(/listens on 127\.0\.0\.1:8080, an address only reachable from inside its own sandbox: listen on 0\.0\.0\.0:8080/);
  });

  it('without network namespaces, points at $PORT', () => {
    expect(describeListenProblem([{ address: '0.0.0.0', port: 3000 }], { host: '127.0.0.1', port: 41234 }, 8080)).toMatch(/listens on :3000; .*\$PORT \(41234 for this one\) — listen on \$PORT/);
  });
});

describe('listeningSockets', () => {
  it('finds the ports a process tree listens on, and not the sockets of others', async () => {
    const other = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => other.once('listening', r));
    // a shell whose child listens on two ports: the tree is followed
    const child = spawn('/bin/sh', ['-c', `node -e "const n=require('net');n.createServer().listen(0,'127.0.0.1',()=>{n.createServer().listen(0,'0.0.0.0',()=>console.log('up'))})"; true`], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const found = await listeningSockets(child.pid!);
      expect(found.map((l) => l.address).sort()).toEqual(['0.0.0.0', '127.0.0.1']);
      expect(found.map((l) => l.port)).not.toContain((other.address() as net.AddressInfo).port);
    } finally {
      // the whole group: the shell and the node under it
      process.kill(-child.pid!, 'SIGKILL');
      other.close();
    }
    expect(await listeningSockets(999_999_999)).toEqual([]);
  });
});

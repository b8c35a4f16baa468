// A test server in a process of its own, for a test that kills it: it starts, deploys the Node
// hello app, answers one request through it, prints what it is (one JSON line) and stays up.
// With `bench`, it takes the host names a bench platform of this process would have.
// usage: node --import tsx test/helpers/test-server-process.ts [bench]
import path from 'node:path';
import { FIXTURES, startTestServer } from './server.ts';
import { benchServerNames } from './server-names.ts';
import { claimTestSubnet } from './subnets.ts';

const bench = process.argv[2] === 'bench';
const server = await startTestServer(bench ? { isolation: { ...benchServerNames(process.pid, 1), CELLHOST_NETNS_SUBNET: claimTestSubnet() } } : {});
const dep = await server.deploy('web', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
const hit = await server.app('web');
const view = (await server.api('GET', '/api/v1/services/web')).body;
console.log(JSON.stringify({ pid: process.pid, dataDir: server.dataDir, names: server.isolation, deployment: dep.status, status: hit.status, appPid: view.instances?.[0]?.pid ?? null }));
setInterval(() => {}, 60_000);

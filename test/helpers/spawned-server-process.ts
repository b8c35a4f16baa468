// A process that starts the platform as its child (subprocess-server.ts), for a test that kills
// this process: it prints what it started (one JSON line) and stays up.
// usage: node --import tsx test/helpers/spawned-server-process.ts
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childServerNames } from './server-names.ts';
import { freePortSync, spawnServer } from './subprocess-server.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-spawned-'));
const child = await spawnServer(dataDir, { http: await freePortSync(), admin: await freePortSync() });
const health = await fetch(`${child.adminUrl}/api/v1/health`);
console.log(JSON.stringify({ pid: process.pid, platformPid: child.proc.pid, dataDir, names: childServerNames(process.pid), health: health.status }));
setInterval(() => {}, 60_000);

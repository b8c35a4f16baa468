// The rule between the API and the app manifest: explicit settings win, the manifest gives the
// others, a setting neither gives has its default; and services made before manifests existed
// keep what they had.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { describeSettings, resolveSettings, settingsConflict } from '../../../runtime/control/manifest-settings.ts';
import { clearedSettings, givenSettings, SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import { parseManifest, type Manifest } from '../../../runtime/manifest/manifest.ts';
import { MIGRATIONS } from '../../../runtime/store/migrations.ts';
import { openStore } from '../../../runtime/store/index.ts';
import type { ServiceSettings } from '../../../runtime/store/services.ts';

function manifest(text: string): Manifest {
  const r = parseManifest('cellhost.toml', text);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.manifest;
}

const base: ServiceSettings = { ...SERVICE_DEFAULTS, runtime: 'node' };

describe('resolveSettings', () => {
  const m = manifest('runtime = "python"\nport = 3000\nmemory = 512\n[scaling]\nmin = 1\nidle_timeout = "10m"\n');

  it('the manifest gives every setting that is not explicit', () => {
    const r = resolveSettings(base, ['runtime'], m);
    expect(r).toMatchObject({ runtime: 'node', port: 3000, memoryMb: 512, minInstances: 1, idleTimeoutS: 600, maxInstances: 10 });
    expect(resolveSettings(base, [], m).runtime).toBe('python');
  });

  it('explicit settings keep their values; the log says which were not applied and why', () => {
    const service = { ...base, port: 8080, memoryMb: 256 };
    const r = resolveSettings(service, ['runtime', 'port', 'memoryMb'], m);
    expect(r).toMatchObject({ runtime: 'node', port: 8080, memoryMb: 256, minInstances: 1 });
    expect(describeSettings(service, ['runtime', 'port', 'memoryMb'], m, r)).toEqual([
      'runtime = "python" (cellhost.toml line 1) is not applied: runtime was set to "node" through the API or CLI, which wins',
      'port = 3000 (cellhost.toml line 2) is not applied: port was set to 8080 through the API or CLI, which wins',
      'memory = 512 MB (cellhost.toml line 3) is not applied: memoryMb was set to 256 MB through the API or CLI, which wins',
      'scaling.min = 1 (cellhost.toml line 5)',
      'scaling.idle_timeout = 10m (cellhost.toml line 6)',
    ]);
  });

  it('a setting the manifest no longer gives goes back to its default, and the log says so; the runtime stays', () => {
    const before = resolveSettings(base, [], m);
    const without = manifest('port = 3000\n');
    const after = resolveSettings(before, [], without);
    expect(after).toMatchObject({ runtime: 'python', port: 3000, memoryMb: 1024, minInstances: 0, idleTimeoutS: 300 });
    expect(describeSettings(before, [], without, after)).toEqual([
      'port = 3000 (cellhost.toml line 1)',
      'memory back to 1024 MB: cellhost.toml does not set it (the default)',
      'scaling.min back to 0: cellhost.toml does not set it (the default)',
      'scaling.idle_timeout back to 5m: cellhost.toml does not set it (the default)',
    ]);
    expect(resolveSettings(before, [], null)).toMatchObject({ runtime: 'python', port: 8080, memoryMb: 1024 });
  });

  it('settings outside the manifest (root dir, domains) are never touched', () => {
    const service = { ...base, rootDir: 'web', domains: ['a.example.com'] };
    expect(resolveSettings(service, [], m)).toMatchObject({ rootDir: 'web', domains: ['a.example.com'] });
  });

  it('min above max from two sources is a conflict naming both', () => {
    const s = resolveSettings({ ...base, maxInstances: 2 }, ['maxInstances'], manifest('[scaling]\nmin = 3\n'));
    expect(settingsConflict(s, ['maxInstances'], manifest('[scaling]\nmin = 3\n'))).toBe(
      'minInstances 3 (cellhost.toml line 2) is more than maxInstances 2 (set through the API or CLI)',
    );
  });
});

describe('explicit settings from API bodies', () => {
  it('a value makes a setting explicit; null, or a blank command, clears it', () => {
    expect(givenSettings({ port: 3000, buildCommand: '  ', startCommand: null, memoryMb: undefined })).toEqual(['port']);
    expect(clearedSettings({ port: 3000, buildCommand: '  ', startCommand: null, memoryMb: undefined })).toEqual(['buildCommand', 'startCommand']);
  });
});

describe('the migration that records explicit settings', () => {
  it('a service made before manifests keeps every setting it has that is not the default; new deployments have no manifest', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-explicit-'));
    try {
      const file = path.join(dir, 'cellhost.db');
      const old = new Database(file);
      const before = MIGRATIONS.findIndex((m) => m.includes('explicit_settings'));
      for (const m of MIGRATIONS.slice(0, before)) old.exec(m);
      old.pragma(`user_version = ${before}`);
      const insert = old.prepare(
        `INSERT INTO services (name, runtime, build_command, start_command, port, memory_mb, plan, min_instances, max_instances, concurrency, idle_timeout_s, request_timeout_s, health_path, root_dir, domains, created_at, updated_at)
         VALUES (?, 'node', ?, NULL, ?, ?, 'hobby', 0, 10, 100, 300, ?, NULL, 'web', '[]', 'now', 'now')`,
      );
      insert.run('plain', null, 8080, 1024, 900);
      insert.run('tuned', 'npm ci', 3000, 512, 60);
      old.prepare(`INSERT INTO deployments (id, service, seq, status, source, created_at) VALUES ('d-1', 'tuned', 1, 'live', 'upload:tar.gz', 'now')`).run();
      old.close();
      const store = openStore(file);
      try {
        expect(store.services.get('plain')!.explicitSettings).toEqual(['runtime']);
        expect(store.services.get('tuned')!.explicitSettings).toEqual(['runtime', 'buildCommand', 'port', 'memoryMb', 'requestTimeoutS']);
        expect(store.deployments.get('d-1')!.manifest).toBeNull();
      } finally {
        store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

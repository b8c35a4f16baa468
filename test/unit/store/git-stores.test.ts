// The tables behind git pushes, webhooks and previews: settings a service gains (deploy branch,
// previews), env variables kept out of previews, webhook secrets and credentials encrypted and
// re-encrypted with the master key, deliveries kept to a limit and recognised when replayed,
// previews that outlive their service for usage.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import { createEnvStore } from '../../../runtime/store/env.ts';
import { createHookStore, type NewDelivery } from '../../../runtime/store/hooks.ts';
import { openStore, type Store } from '../../../runtime/store/index.ts';
import { createPreviewStore } from '../../../runtime/store/previews.ts';
import { generateKey } from '../../../runtime/store/secrets.ts';

const range = { first: 5000, last: 5100 };
const now = '2026-12-03T10:00:00.000Z';
let dir: string;
let store: Store;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-git-stores-'));
  store = openStore(path.join(dir, 'cellhost.db'));
  store.services.insert('app', { ...SERVICE_DEFAULTS, runtime: 'node' }, now, range);
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const delivery = (over: Partial<NewDelivery> = {}): NewDelivery => ({
  service: 'app',
  receivedAt: now,
  forge: 'github',
  event: 'push',
  deliveryId: 'd1',
  bodySha256: 'b1',
  status: 202,
  code: null,
  action: 'deploy',
  detail: 'deployed',
  ref: 'refs/heads/main',
  commit: 'abc',
  deploymentId: 'd-1',
  ...over,
});

describe('service settings', () => {
  it('a service deploys main and has no previews unless asked; both are stored', () => {
    expect(store.services.get('app')).toMatchObject({ deployBranch: 'main', previews: false });
    store.services.update('app', { ...store.services.get('app')!, deployBranch: 'release/1.x', previews: true }, now);
    expect(store.services.get('app')).toMatchObject({ deployBranch: 'release/1.x', previews: true });
  });
});

describe('env variables and previews', () => {
  it('a variable goes to previews unless flagged; the flag survives a change of value and a replace', () => {
    const key = generateKey();
    const env = createEnvStore(store.db, () => key);
    env.set('app', { A: '1', SECRET: 's' }, 't', now, { SECRET: false });
    expect(env.list('app').map((v) => [v.name, v.preview])).toEqual([['A', true], ['SECRET', false]]);
    env.set('app', { SECRET: 's2' }, 't', now);
    expect(env.list('app').find((v) => v.name === 'SECRET')!.preview).toBe(false);
    env.replace('app', { SECRET: 's3', B: '2' }, 't', now);
    expect(env.list('app').map((v) => [v.name, v.preview])).toEqual([['B', true], ['SECRET', false]]);
    expect(env.values('app')).toEqual({ B: '2', SECRET: 's3' });
  });
});

describe('webhook settings', () => {
  it('the secret and the credential are stored encrypted, opened with the key, re-encrypted under a new one', () => {
    const key = generateKey();
    let current = key;
    const hooks = createHookStore(store.db, () => current);
    const first = hooks.ensure('app', now);
    expect(first.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(hooks.ensure('app', now).secret).toBe(first.secret);
    hooks.configure('app', 'https://git.example.com/a.git', { kind: 'token', username: 'x-access-token', token: 'tok-123' }, now);
    const raw = store.db.prepare('SELECT secret, credential FROM hook_settings').get() as { secret: Buffer; credential: Buffer };
    expect(raw.secret.includes(Buffer.from(first.secret))).toBe(false);
    expect(raw.credential.includes(Buffer.from('tok-123'))).toBe(false);

    const next = generateKey();
    store.db.transaction(() => hooks.rotateKey(key, next))();
    current = next;
    expect(hooks.get('app')).toMatchObject({ secret: first.secret, repository: 'https://git.example.com/a.git', credential: { kind: 'token', token: 'tok-123' } });
    current = key;
    expect(() => hooks.get('app')).toThrow(/does not decrypt/);
  });

  it('a rotated secret replaces the old; a credential left undefined stays, null removes it', () => {
    const key = generateKey();
    const hooks = createHookStore(store.db, () => key);
    const old = hooks.ensure('app', now).secret;
    const fresh = hooks.rotateSecret('app', now);
    expect(fresh).not.toBe(old);
    expect(hooks.get('app')!.secret).toBe(fresh);
    hooks.configure('app', null, { kind: 'ssh-key', privateKey: 'KEY', knownHosts: null }, now);
    hooks.configure('app', 'ssh://git@example.com/a.git', undefined, now);
    expect(hooks.get('app')!.credential).toMatchObject({ kind: 'ssh-key' });
    hooks.configure('app', 'ssh://git@example.com/a.git', null, now);
    expect(hooks.get('app')!.credential).toBeNull();
  });

  it('deliveries are kept newest first up to the limit; accepted ones are recognised by id or by body', () => {
    const hooks = createHookStore(store.db, () => generateKey(), { keepDeliveries: 3 });
    for (let i = 1; i <= 5; i++) hooks.record(delivery({ deliveryId: `d${i}`, bodySha256: `b${i}` }));
    hooks.record(delivery({ deliveryId: 'bad', bodySha256: 'bx', status: 401, code: 'ERR_HOOK_SIGNATURE', action: 'refused' }));
    expect(hooks.deliveries('app', 10).map((d) => d.deliveryId)).toEqual(['bad', 'd5', 'd4']);
    expect(hooks.seen('app', 'd5', 'zzz')).toBe(true);
    expect(hooks.seen('app', 'other', 'b4')).toBe(true);
    expect(hooks.seen('app', 'bad', 'bx')).toBe(false);
    expect(hooks.seen('app', 'd1', 'b1')).toBe(false);
  });
});

describe('previews', () => {
  it('one live preview per branch; a deleted one still names its parent', () => {
    const previews = createPreviewStore(store.db);
    previews.insert({ name: 'feature--app', parent: 'app', branch: 'feature', pullRequest: null, now });
    expect(previews.forBranch('app', 'feature')).toMatchObject({ name: 'feature--app', pullRequest: null });
    previews.setPullRequest('feature--app', 7);
    expect(previews.listFor('app').map((p) => [p.name, p.pullRequest])).toEqual([['feature--app', 7]]);
    previews.markDeleted('feature--app', now);
    expect(previews.forBranch('app', 'feature')).toBeUndefined();
    expect(previews.list()).toEqual([]);
    expect(previews.parents().get('feature--app')).toBe('app');
    previews.insert({ name: 'feature--app', parent: 'app', branch: 'feature', pullRequest: 9, now });
    expect(previews.get('feature--app')).toMatchObject({ deletedAt: null, pullRequest: 9 });
  });
});

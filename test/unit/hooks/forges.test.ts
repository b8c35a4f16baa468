// Who sent a webhook and what it says, without a server: each forge told apart by its headers
// (Gitea and Forgejo also send GitHub's), signatures checked over the exact bytes, and each
// forge's events read into the few cellhost acts on.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEvent, readBody } from '../../../runtime/hooks/events.ts';
import { createRateLimiter } from '../../../runtime/hooks/rate-limit.ts';
import { identifySender, safeEqual, signBody, verifySender } from '../../../runtime/hooks/signatures.ts';

const fixture = (name: string) => JSON.parse(fs.readFileSync(new URL(`../../fixtures/webhooks/${name}.json`, import.meta.url), 'utf8')) as { headers: Record<string, string>; body: any };
const lookup = (headers: Record<string, string>) => (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];

describe('identifySender', () => {
  it('tells the forges apart, Gitea and Forgejo before the GitHub headers they also send', () => {
    const gitea = fixture('gitea-push').headers;
    expect(identifySender(lookup({ ...gitea, 'X-Gitea-Signature': 'ab' }))).toMatchObject({ forge: 'gitea', event: 'push', deliveryId: gitea['X-Gitea-Delivery'], proof: { kind: 'hmac', hex: 'ab' } });
    expect(identifySender(lookup({ ...gitea, 'X-Forgejo-Event': 'push', 'X-Forgejo-Signature': 'cd', 'X-Gitea-Signature': 'ab' }))).toMatchObject({ forge: 'forgejo', proof: { hex: 'cd' } });
    expect(identifySender(lookup({ ...fixture('github-push').headers, 'X-Hub-Signature-256': 'sha256=ef' }))).toMatchObject({ forge: 'github', event: 'push', proof: { hex: 'ef' } });
    expect(identifySender(lookup({ ...fixture('gitlab-push').headers, 'X-Gitlab-Token': 't' }))).toMatchObject({ forge: 'gitlab', event: 'Push Hook', deliveryId: '13792a34-cac6-4fda-95a8-c58e00a3954e', proof: { kind: 'token', value: 't' } });
    expect(identifySender(lookup({ 'X-Cellhost-Signature': 'sha256=01' }))).toMatchObject({ forge: 'generic', event: 'push', proof: { hex: '01' } });
    expect(identifySender(lookup({ 'content-type': 'application/json' }))).toBeNull();
  });

  it('a GitHub delivery signed only with SHA-1, or a prefix missing, has no proof', () => {
    expect(identifySender(lookup({ 'X-GitHub-Event': 'push', 'X-Hub-Signature': 'sha1=00' }))!.proof).toBeNull();
    expect(identifySender(lookup({ 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': '00' }))!.proof).toBeNull();
  });
});

describe('verifySender', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  it('an HMAC over the exact bytes, either hex case; a token compared whole', () => {
    const sig = signBody('s3cret', body);
    expect(verifySender({ forge: 'github', event: 'push', deliveryId: null, proof: { kind: 'hmac', header: 'x', hex: sig.toUpperCase() } }, body, 's3cret')).toBe(true);
    expect(verifySender({ forge: 'github', event: 'push', deliveryId: null, proof: { kind: 'hmac', header: 'x', hex: sig } }, Buffer.from(body.toString() + ' '), 's3cret')).toBe(false);
    expect(verifySender({ forge: 'github', event: 'push', deliveryId: null, proof: { kind: 'hmac', header: 'x', hex: sig.slice(0, 10) } }, body, 's3cret')).toBe(false);
    expect(verifySender({ forge: 'gitlab', event: 'Push Hook', deliveryId: null, proof: { kind: 'token', header: 'x', value: 's3cret' } }, body, 's3cret')).toBe(true);
    expect(verifySender({ forge: 'gitlab', event: 'Push Hook', deliveryId: null, proof: { kind: 'token', header: 'x', value: 's3cre' } }, body, 's3cret')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });
});

describe('parseEvent', () => {
  it('pushes of each forge: branch, commit, clone URL; a deleted branch has no commit; tags are tags', () => {
    expect(parseEvent('github', 'push', fixture('github-push').body)).toEqual({ kind: 'push', branch: 'main', commit: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c', cloneUrl: 'https://github.com/octo-org/web.git' });
    expect(parseEvent('gitea', 'push', fixture('gitea-push').body)).toEqual({ kind: 'push', branch: 'develop', commit: 'bffeb74224043ba2feb48d137756c8a9331c449a', cloneUrl: 'http://localhost:3000/gitea/webhooks.git' });
    expect(parseEvent('gitlab', 'Push Hook', fixture('gitlab-push').body)).toEqual({ kind: 'push', branch: 'main', commit: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7', cloneUrl: 'https://gitlab.example.com/mike/web.git' });
    const deleted = { ...fixture('github-push').body, after: '0'.repeat(40), deleted: true };
    expect(parseEvent('github', 'push', deleted)).toMatchObject({ kind: 'push', branch: 'main', commit: null });
    expect(parseEvent('github', 'delete', { ref: 'topic', ref_type: 'branch' })).toMatchObject({ kind: 'push', branch: 'topic', commit: null });
    expect(parseEvent('github', 'push', { ...fixture('github-push').body, ref: 'refs/tags/v1' })).toEqual({ kind: 'tag', tag: 'v1' });
    expect(parseEvent('github', 'ping', fixture('github-ping').body)).toEqual({ kind: 'ping' });
    expect(parseEvent('github', 'issues', {})).toEqual({ kind: 'other', name: 'issues' });
  });

  it('pull requests: what deploys, what closes, what is a fork', () => {
    const gh = fixture('github-pull_request').body;
    expect(parseEvent('github', 'pull_request', gh)).toEqual({ kind: 'pull_request', action: 'deploy', number: 7, branch: 'landing', commit: '9f1c2b3a4d5e6f708192a3b4c5d6e7f801234567', fromFork: false, cloneUrl: 'https://github.com/octo-org/web.git' });
    expect(parseEvent('github', 'pull_request', { ...gh, action: 'closed' })).toMatchObject({ action: 'close' });
    expect(parseEvent('github', 'pull_request', { ...gh, action: 'labeled' })).toMatchObject({ action: 'ignore' });
    const fork = structuredClone(gh);
    fork.pull_request.head.repo.id = 1;
    expect(parseEvent('github', 'pull_request', fork)).toMatchObject({ fromFork: true });
    expect(parseEvent('gitea', 'pull_request', fixture('gitea-pull_request').body)).toMatchObject({ action: 'deploy', number: 2, branch: 'test-patch-1', fromFork: false });
    const mr = fixture('gitlab-merge_request').body;
    expect(parseEvent('gitlab', 'Merge Request Hook', mr)).toMatchObject({ action: 'deploy', number: 4, branch: 'ms-viewport', fromFork: false });
    // an update that adds no commit (a title, a label) does not build; one with oldrev does
    expect(parseEvent('gitlab', 'Merge Request Hook', { ...mr, object_attributes: { ...mr.object_attributes, action: 'update' } })).toMatchObject({ action: 'ignore' });
    expect(parseEvent('gitlab', 'Merge Request Hook', { ...mr, object_attributes: { ...mr.object_attributes, action: 'update', oldrev: 'a'.repeat(40) } })).toMatchObject({ action: 'deploy' });
    expect(parseEvent('gitlab', 'Merge Request Hook', { ...mr, object_attributes: { ...mr.object_attributes, action: 'merge' } })).toMatchObject({ action: 'close' });
    expect(parseEvent('gitlab', 'Merge Request Hook', { ...mr, object_attributes: { ...mr.object_attributes, source_project_id: 99 } })).toMatchObject({ fromFork: true });
  });

  it('the generic form; malformed bodies say what is wrong', () => {
    expect(parseEvent('generic', 'push', { ref: 'main', commit: 'a'.repeat(40), repository: 'https://x/y.git' })).toEqual({ kind: 'push', branch: 'main', commit: 'a'.repeat(40), cloneUrl: 'https://x/y.git' });
    expect(parseEvent('generic', 'push', { ref: 'refs/heads/topic', deleted: true })).toMatchObject({ kind: 'push', branch: 'topic', commit: null });
    expect(() => parseEvent('generic', 'push', { ref: 'main' })).toThrow(/commit is missing/);
    expect(() => parseEvent('generic', 'push', { ref: 'main', commit: 'not-a-sha' })).toThrow(/commit is not a commit id/);
    expect(() => parseEvent('github', 'pull_request', { action: 'opened' })).toThrow(/pull_request is missing/);
    expect(() => readBody(Buffer.from('[1]'), 'application/json')).toThrow(/not a JSON object/);
    expect(() => readBody(Buffer.from('{'), 'application/json')).toThrow(/not JSON/);
  });

  it('a form-encoded delivery (GitHub and Gitea offer it) carries the JSON in its payload field', () => {
    const form = new URLSearchParams({ payload: JSON.stringify({ ref: 'refs/heads/main' }) }).toString();
    expect(readBody(Buffer.from(form), 'application/x-www-form-urlencoded; charset=utf-8')).toEqual({ ref: 'refs/heads/main' });
    expect(() => readBody(Buffer.from('x=1'), 'application/x-www-form-urlencoded')).toThrow(/without a payload field/);
  });
});

describe('createRateLimiter', () => {
  it('counts per key in a sliding window and says when the oldest hit leaves it', () => {
    let now = 0;
    const limiter = createRateLimiter({ limit: 2, windowMs: 1000, now: () => now });
    expect(limiter.hit('a').ok).toBe(true);
    now = 400;
    expect(limiter.hit('a').ok).toBe(true);
    expect(limiter.hit('a')).toEqual({ ok: false, retryAfterMs: 600 });
    expect(limiter.hit('b').ok).toBe(true);
    now = 1001;
    expect(limiter.hit('a').ok).toBe(true);
  });
});

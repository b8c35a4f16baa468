// Who sent a webhook delivery, and whether it holds the service's secret, as each forge signs:
//   GitHub           X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
//   Gitea            X-Gitea-Signature: <hex HMAC-SHA256 of the body>
//   Forgejo          X-Forgejo-Signature: <hex HMAC-SHA256 of the body> (it sends the Gitea headers too)
//   GitLab           X-Gitlab-Token: the secret itself (it authenticates the sender, not the body)
//   generic JSON     X-Cellhost-Signature: sha256=<hex HMAC-SHA256 of the body>
// Gitea and Forgejo also send GitHub's event and delivery headers, so they are recognised first.
// Every comparison is constant-time: both sides are hashed to equal lengths first.
import crypto from 'node:crypto';

export type Forge = 'github' | 'gitea' | 'forgejo' | 'gitlab' | 'generic';

export interface Sender {
  forge: Forge;
  /** the forge's event name (X-GitHub-Event, X-Gitea-Event, X-Gitlab-Event); generic: "push" */
  event: string;
  /** the forge's id of this delivery, when it sends one */
  deliveryId: string | null;
  /** what proves the secret: an HMAC of the body (hex), or the secret itself */
  proof: { kind: 'hmac'; header: string; hex: string } | { kind: 'token'; header: string; value: string } | null;
}

export type Headers = (name: string) => string | undefined;

/** which forge sent the delivery, by its headers; null when none cellhost knows */
export function identifySender(header: Headers): Sender | null {
  const hmac = (name: string, prefixed: boolean): Sender['proof'] => {
    const v = header(name)?.trim();
    if (!v) return null;
    if (prefixed) return v.toLowerCase().startsWith('sha256=') ? { kind: 'hmac', header: name, hex: v.slice(7) } : null;
    return { kind: 'hmac', header: name, hex: v };
  };
  if (header('x-forgejo-event') !== undefined || header('x-forgejo-signature') !== undefined) {
    return {
      forge: 'forgejo',
      event: header('x-forgejo-event') ?? header('x-gitea-event') ?? '',
      deliveryId: header('x-forgejo-delivery') ?? header('x-gitea-delivery') ?? null,
      // a Forgejo signature is the one checked when there is one: a bad one is not rescued by another header
      proof: hmac('x-forgejo-signature', false) ?? hmac('x-gitea-signature', false),
    };
  }
  if (header('x-gitea-event') !== undefined || header('x-gitea-signature') !== undefined) {
    return { forge: 'gitea', event: header('x-gitea-event') ?? '', deliveryId: header('x-gitea-delivery') ?? null, proof: hmac('x-gitea-signature', false) };
  }
  if (header('x-gitlab-event') !== undefined || header('x-gitlab-token') !== undefined) {
    const token = header('x-gitlab-token');
    return {
      forge: 'gitlab',
      event: header('x-gitlab-event') ?? '',
      deliveryId: header('x-gitlab-event-uuid') ?? header('idempotency-key') ?? null,
      proof: token ? { kind: 'token', header: 'x-gitlab-token', value: token } : null,
    };
  }
  if (header('x-github-event') !== undefined || header('x-hub-signature-256') !== undefined || header('x-hub-signature') !== undefined) {
    return { forge: 'github', event: header('x-github-event') ?? '', deliveryId: header('x-github-delivery') ?? null, proof: hmac('x-hub-signature-256', true) };
  }
  if (header('x-cellhost-signature') !== undefined) {
    return { forge: 'generic', event: header('x-cellhost-event') ?? 'push', deliveryId: header('x-cellhost-delivery') ?? null, proof: hmac('x-cellhost-signature', true) };
  }
  return null;
}

/** the hex HMAC-SHA256 of `body` under `secret`, as the forges send it */
export function signBody(secret: string, body: Buffer | string): string {
  return crypto.createHmac('sha256', secret).update(body).digest('hex');
}

/** equal in constant time: both sides hashed to 32 bytes, so neither length nor content leaks by timing */
export function safeEqual(a: string, b: string): boolean {
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db);
}

/** whether the delivery's proof holds the secret */
export function verifySender(sender: Sender, body: Buffer, secret: string): boolean {
  const proof = sender.proof;
  if (!proof) return false;
  if (proof.kind === 'token') return safeEqual(proof.value, secret);
  return safeEqual(proof.hex.toLowerCase(), signBody(secret, body));
}

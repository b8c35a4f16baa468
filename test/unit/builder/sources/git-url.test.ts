// Which git URLs cellhost clones, by their text alone.
import { describe, expect, it } from 'vitest';
import { allowedProtocols, checkGitUrl, protocolConfig, redactUrl } from '../../../../builder/sources/git-url.ts';

const OPEN = { allowLocal: true, allowHttp: true };

const refusal = (url: string, policy = { allowLocal: false, allowHttp: false }) => {
  try {
    checkGitUrl(url, policy);
    return 'allowed';
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_SOURCE_GIT_URL', details: { field: 'git' } });
    return (err as Error).message;
  }
};

describe('git URLs', () => {
  it('allows https, ssh and scp-style addresses by default', () => {
    expect(checkGitUrl('https://github.com/you/app.git')).toEqual({ transport: 'https' });
    expect(checkGitUrl('https://user:token@git.example.com:8443/a/b')).toEqual({ transport: 'https' });
    expect(checkGitUrl('ssh://git@github.com/you/app.git')).toEqual({ transport: 'ssh' });
    expect(checkGitUrl('git@github.com:you/app.git')).toEqual({ transport: 'ssh' });
    expect(checkGitUrl('github.com:you/app.git')).toEqual({ transport: 'ssh' });
    expect(checkGitUrl('git@[2001:db8::1]:app.git')).toEqual({ transport: 'ssh' });
  });

  it('refuses local paths and file:// unless allowed, and then only absolute ones', () => {
    for (const url of ['/srv/repos/app.git', 'file:///srv/repos/app.git', './app', 'app.git', '../x']) expect(refusal(url)).toMatch(/CELLHOST_GIT_ALLOW_LOCAL/);
    expect(checkGitUrl('/srv/repos/app.git', OPEN)).toEqual({ transport: 'file', path: '/srv/repos/app.git' });
    expect(checkGitUrl('file:///srv/repos/app.git', OPEN)).toEqual({ transport: 'file', path: '/srv/repos/app.git' });
    for (const url of ['./app', 'file:///srv/a%20b/app.git', '/srv/x/../app.git', 'file:///srv//app.git']) expect(refusal(url, OPEN), url).toMatch(/plain absolute path/);
  });

  it('refuses plain http unless allowed', () => {
    expect(refusal('http://git.lan/app.git')).toMatch(/CELLHOST_GIT_ALLOW_HTTP/);
    expect(checkGitUrl('http://git.lan/app.git', OPEN)).toEqual({ transport: 'http' });
    expect(refusal('http:///app.git', OPEN)).toMatch(/names no host/);
  });

  it('refuses remote helpers, other schemes and option-like or odd text, whatever is allowed', () => {
    for (const url of ['fd::17', 'fd::0,1/app', 'ext::sh -c id', 'stall::x', 'git://example.com/app.git', 'ftp://example.com/a', 'HTTPS+X://a/b']) {
      expect(refusal(url, OPEN), url).not.toBe('allowed');
    }
    expect(refusal('fd::17', OPEN)).toMatch(/remote helpers \(fd::\)/);
    for (const url of ['', '-uhttps://x', '--upload-pack=touch /x', 'https://a b/c', 'https://a/\nb', 'ssh://-oProxyCommand=x/y', 'ssh://git@-oProxyCommand=x/y', '-oProxyCommand=x:y', 'git@-oProxyCommand=x:y']) {
      expect(refusal(url, OPEN), JSON.stringify(url)).not.toBe('allowed');
    }
  });

  it('never shows the credentials of a refused URL', () => {
    expect(refusal('ftp://user:s3cret@example.com/a')).not.toContain('s3cret');
    expect(redactUrl('see https://a:b@host/x and ssh://git@host/y')).toBe('see https://***@host/x and ssh://***@host/y');
  });

  it("gives git the same list, in its own settings and in GIT_ALLOW_PROTOCOL", () => {
    expect(protocolConfig({ allowLocal: false, allowHttp: false })).toEqual(['-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always', '-c', 'protocol.ssh.allow=always']);
    expect(allowedProtocols({ allowLocal: false, allowHttp: false })).toBe('https:ssh');
    expect(allowedProtocols(OPEN)).toBe('https:ssh:http:file');
  });
});

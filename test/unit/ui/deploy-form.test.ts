import { describe, expect, it } from 'vitest';
import { SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import type { Service } from '../../../runtime/store/services.ts';
import { deployDefaults, parseDeployForm, parseEnvLines } from '../../../ui/deploy-form.ts';

const archive = new File([new Uint8Array([0x1f, 0x8b, 8, 0])], 'app.tar.gz');
const none = () => undefined;

describe('parseDeployForm', () => {
  it('a valid new service: a create body with what differs from the defaults; empty numbers and blank commands are left out', () => {
    const r = parseDeployForm({ name: 'web', runtime: 'python', buildCommand: 'pip install -r requirements.txt\r\npip install gunicorn', startCommand: '  ', port: '', memoryMb: '512', env: '', archive }, none);
    expect(r.errors).toEqual({});
    expect(r.plan).toMatchObject({
      name: 'web',
      create: { name: 'web', runtime: 'python', buildCommand: 'pip install -r requirements.txt\npip install gunicorn', memoryMb: 512 },
      env: {},
      source: { kind: 'upload' },
    });
    // left to the app manifest, else the defaults: sent, they would be explicit and win over it
    expect(r.plan?.create).not.toHaveProperty('port');
    expect(r.plan?.create).not.toHaveProperty('startCommand');
    const untouched = parseDeployForm({ name: 'web', runtime: 'node', buildCommand: '', startCommand: '', port: '8080', memoryMb: String(SERVICE_DEFAULTS.memoryMb), archive }, none);
    expect(untouched.plan?.create).toEqual({ name: 'web', runtime: 'node' });
  });

  it('an existing name becomes a patch of what was changed only', () => {
    const existing = { name: 'web', runtime: 'node', ...SERVICE_DEFAULTS, buildCommand: 'npm ci' } as unknown as Service;
    const r = parseDeployForm({ name: 'web', runtime: 'node', buildCommand: 'npm ci', port: '3000', memoryMb: '1024', git: 'https://example.com/a.git', ref: 'v1.2' }, () => existing);
    expect(r.plan?.create).toBeUndefined();
    expect(r.plan?.patch).toEqual({ port: 3000 });
    expect(r.plan?.source).toEqual({ kind: 'git', url: 'https://example.com/a.git', ref: 'v1.2' });
    // an emptied command is sent as null: no longer explicit, the manifest or the default decides
    const emptied = parseDeployForm({ name: 'web', runtime: 'go', buildCommand: '', port: '8080', memoryMb: '1024', archive }, () => existing);
    expect(emptied.plan?.patch).toEqual({ runtime: 'go', buildCommand: null });
  });

  it('reports every field at once, each message starting with its field', () => {
    const r = parseDeployForm({ name: '-bad-', runtime: 'java', port: '70000', memoryMb: 'lots', env: 'A=1\n=x', git: 'x', ref: 'bad ref' }, none);
    expect(r.plan).toBeUndefined();
    expect(Object.keys(r.errors).sort()).toEqual(['env', 'memoryMb', 'name', 'port', 'ref', 'runtime']);
    for (const [field, message] of Object.entries(r.errors)) expect(message.startsWith(`${field}:`), message).toBe(true);
    expect(r.errors.memoryMb).toBe('memoryMb: a whole number');
    expect(r.errors.port).toMatch(/65535/);
  });

  it('needs a source, and only one', () => {
    expect(parseDeployForm({ name: 'a', runtime: 'go' }, none).errors.archive).toMatch(/^source: choose/);
    expect(parseDeployForm({ name: 'a', runtime: 'go', archive: new File([], 'empty') }, none).errors.archive).toMatch(/^source: choose/);
    expect(parseDeployForm({ name: 'a', runtime: 'go', archive, git: 'https://x/y.git' }, none).errors.archive).toMatch(/not both/);
  });

  it('form defaults come from the service or the platform defaults', () => {
    expect(deployDefaults()).toMatchObject({ runtime: 'node', port: '8080', memoryMb: String(SERVICE_DEFAULTS.memoryMb) });
    expect(deployDefaults({ name: 'x', runtime: 'go', ...SERVICE_DEFAULTS, port: 9000, startCommand: './app' } as unknown as Service)).toMatchObject({ name: 'x', runtime: 'go', port: '9000', startCommand: './app' });
  });
});

describe('parseEnvLines', () => {
  it('reads KEY=VALUE lines, comments, export and quotes; values keep their = signs', () => {
    const errors: string[] = [];
    const vars = parseEnvLines('# db\nexport DB_URL="postgres://u:p@h/db?x=1"\n\nTOKEN=a=b=c\nQUOTED=\'single\'\nEMPTY=', (_f, m) => errors.push(m));
    expect(errors).toEqual([]);
    expect(vars).toEqual({ DB_URL: 'postgres://u:p@h/db?x=1', TOKEN: 'a=b=c', QUOTED: 'single', EMPTY: '' });
  });
  it('names the line of a malformed entry', () => {
    const errors: string[] = [];
    parseEnvLines('OK=1\n9LIVES=x', (_f, m) => errors.push(m));
    expect(errors[0]).toMatch(/^env: line 2: variable name "9LIVES"/);
  });
});

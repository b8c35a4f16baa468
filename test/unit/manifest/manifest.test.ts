import { describe, expect, it } from 'vitest';
import { describeProblem, manifestError, parseManifest, type Manifest, type ManifestFile } from '../../../runtime/manifest/manifest.ts';
import { formatDurationS, parseDurationS, parseMemoryMb } from '../../../runtime/manifest/units.ts';

function ok(file: ManifestFile, text: string): Manifest {
  const r = parseManifest(file, text);
  if (!r.ok) throw new Error(r.problems.map((p) => describeProblem(file, p)).join('\n'));
  return r.manifest;
}

/** every problem as `line N: key: message` */
function problems(file: ManifestFile, text: string): string[] {
  const r = parseManifest(file, text);
  if (r.ok) throw new Error('expected problems, the manifest was accepted');
  return r.problems.map((p) => describeProblem(file, p));
}

const FULL_TOML = `# the web app
name = "web"
runtime = "python"
build = """
pip install -r requirements.txt
python manage.py collectstatic --noinput
"""
start = "gunicorn -b :$PORT app:app"
port = 8000
memory = "512MB"
plan = "pro"
health_path = "/healthz"
domains = ["app.example.com", "www.example.com"]

[scaling]
min = 1
max = 4
concurrency = 50
idle_timeout = "10m"
request_timeout = 60

[env]
required = ["DATABASE_URL", "SECRET_KEY"]

[[cron]]
name = "nightly"
schedule = "0 3 * * *"
path = "/tasks/nightly"
method = "POST"
body = '{"full": true}'
timezone = "Europe/Paris"

[[cron]]
schedule = "*/30 * * * * *"
path = "/tick"
overlap = "allow"
`;

const FULL_JSON = JSON.stringify(
  {
    name: 'web',
    runtime: 'python',
    build: 'pip install -r requirements.txt\npython manage.py collectstatic --noinput\n',
    start: 'gunicorn -b :$PORT app:app',
    port: 8000,
    memory: '512MB',
    plan: 'pro',
    health_path: '/healthz',
    domains: ['app.example.com', 'www.example.com'],
    scaling: { min: 1, max: 4, concurrency: 50, idle_timeout: '10m', request_timeout: 60 },
    env: { required: ['DATABASE_URL', 'SECRET_KEY'] },
    cron: [
      { name: 'nightly', schedule: '0 3 * * *', path: '/tasks/nightly', method: 'POST', body: '{"full": true}', timezone: 'Europe/Paris' },
      { schedule: '*/30 * * * * *', path: '/tick', overlap: 'allow' },
    ],
  },
  null,
  2,
);

describe('parseManifest: a valid manifest', () => {
  it('TOML: every key, as the settings the service holds, each with the line it came from', () => {
    const m = ok('cellhost.toml', FULL_TOML);
    expect(m.name).toBe('web');
    expect(m.settings).toEqual({
      runtime: 'python',
      buildCommand: 'pip install -r requirements.txt\npython manage.py collectstatic --noinput\n',
      startCommand: 'gunicorn -b :$PORT app:app',
      port: 8000,
      memoryMb: 512,
      plan: 'pro',
      healthPath: '/healthz',
      minInstances: 1,
      maxInstances: 4,
      concurrency: 50,
      idleTimeoutS: 600,
      requestTimeoutS: 60,
    });
    expect(m.origins.runtime).toEqual({ key: 'runtime', line: 3 });
    expect(m.origins.memoryMb).toEqual({ key: 'memory', line: 10 });
    expect(m.origins.minInstances).toEqual({ key: 'scaling.min', line: 16 });
    expect(m.origins.requestTimeoutS).toEqual({ key: 'scaling.request_timeout', line: 20 });
    expect(m.requiredEnv).toEqual({ names: ['DATABASE_URL', 'SECRET_KEY'], line: 23 });
    expect(m.domains).toEqual({ names: ['app.example.com', 'www.example.com'], line: 13 });
    expect(m.cron?.jobs).toEqual([
      { name: 'nightly', schedule: '0 3 * * *', path: '/tasks/nightly', method: 'POST', body: '{"full": true}', timezone: 'Europe/Paris', overlap: 'skip', line: 25 },
      { name: null, schedule: '*/30 * * * * *', path: '/tick', method: 'GET', body: null, timezone: 'UTC', overlap: 'allow', line: 33 },
    ]);
  });

  it('JSON: the same keys give the same manifest', () => {
    const toml = ok('cellhost.toml', FULL_TOML);
    const json = ok('cellhost.json', FULL_JSON);
    expect(json.settings).toEqual(toml.settings);
    expect(json.requiredEnv?.names).toEqual(toml.requiredEnv?.names);
    expect(json.cron?.jobs.map(({ line: _l, ...j }) => j)).toEqual(toml.cron?.jobs.map(({ line: _l, ...j }) => j));
    expect(json.origins.port).toEqual({ key: 'port', line: 6 });
    expect(json.origins.concurrency).toEqual({ key: 'scaling.concurrency', line: 17 });
  });

  it('an empty file, dotted keys, inline tables and a byte-order mark are fine', () => {
    expect(ok('cellhost.toml', '').settings).toEqual({});
    expect(ok('cellhost.json', '{}').settings).toEqual({});
    const m = ok('cellhost.toml', '\uFEFFscaling.max = 3\nenv = { required = ["A"] }\nmemory = 2048\n');
    expect(m.settings).toEqual({ maxInstances: 3, memoryMb: 2048 });
    expect(m.origins.maxInstances).toEqual({ key: 'scaling.max', line: 1 });
    expect(m.requiredEnv).toEqual({ names: ['A'], line: 2 });
  });

  it('sizes and durations in the forms people write them', () => {
    expect(ok('cellhost.toml', 'memory = "1GB"').settings.memoryMb).toBe(1024);
    expect(ok('cellhost.toml', 'memory = "1.5gb"').settings.memoryMb).toBe(1536);
    expect(ok('cellhost.toml', 'memory = "256"').settings.memoryMb).toBe(256);
    expect(ok('cellhost.toml', '[scaling]\nidle_timeout = "1h30m"\nrequest_timeout = 0.5').settings).toEqual({ idleTimeoutS: 5400, requestTimeoutS: 0.5 });
    expect(ok('cellhost.toml', '[scaling]\nidle_timeout = "500ms"').settings.idleTimeoutS).toBe(0.5);
    expect(parseMemoryMb('2 GB')).toBe(2048);
    expect(parseMemoryMb('1.3MB')).toBeNull();
    expect(parseMemoryMb('12 parsecs')).toBeNull();
    expect(parseDurationS('2d')).toBe(172_800);
    expect(parseDurationS('5 minutes')).toBeNull();
    expect(formatDurationS(5400)).toBe('1h30m');
    expect(formatDurationS(0.1)).toBe('100ms');
    expect(formatDurationS(90)).toBe('1m30s');
  });
});

describe('parseManifest: every wrong type is named with its line and key', () => {
  // key = a value of the wrong type → the message names the key, the line and what was expected
  const cases: [string, string, RegExp][] = [
    ['name = 7', 'name', /expected a service name, got an integer \(7\)/],
    ['name = "Web App"', 'name', /"Web App": lowercase letters/],
    ['runtime = 3', 'runtime', /expected one of "python", "node", "go", "rust", "edge", got an integer/],
    ['runtime = "java"', 'runtime', /"java" is not one of "python", "node", "go", "rust"/],
    ['build = ["npm ci"]', 'build', /expected a command, got an array/],
    ['build = "  "', 'build', /an empty build command: leave the key out/],
    ['start = true', 'start', /expected a command, got a boolean \(true\)/],
    ['start = ""', 'start', /an empty start command/],
    ['port = "8080"', 'port', /expected a port number from 1 to 65535, got a string \("8080"\)/],
    ['port = 8080.0', 'port', /expected a port number from 1 to 65535, got a float/],
    ['port = 70000', 'port', /70000 is out of range: 1 to 65535/],
    ['memory = true', 'memory', /expected a size in MB/],
    ['memory = "lots"', 'memory', /"lots" is not a size/],
    ['memory = 64', 'memory', /64 is out of range: 128 to 7076 MB/],
    ['memory = "8GB"', 'memory', /"8GB" is out of range/],
    ['memory = 512.5', 'memory', /expected a size in MB .*got a float/],
    ['plan = "enterprise"', 'plan', /"enterprise" is not one of "hobby", "pro"/],
    ['health_path = "healthz"', 'health_path', /"healthz" is not a path starting with \//],
    ['health_path = 1979-05-27', 'health_path', /got a date or time/],
    ['scaling = 3', 'scaling', /expected a table, got an integer \(3\)/],
    ['[scaling]\nmin = "one"', 'scaling.min', /expected a number of instances from 0 to 100, got a string/],
    ['[scaling]\nmin = 101', 'scaling.min', /101 is out of range: 0 to 100/],
    ['[scaling]\nmax = 0', 'scaling.max', /0 is out of range: 1 to 100/],
    ['[scaling]\nconcurrency = 1.5', 'scaling.concurrency', /got a float \(1\.5\)/],
    ['[scaling]\nidle_timeout = "soon"', 'scaling.idle_timeout', /"soon" is not a duration/],
    ['[scaling]\nidle_timeout = [1]', 'scaling.idle_timeout', /expected a duration .*got an array/],
    ['[scaling]\nrequest_timeout = "2h"', 'scaling.request_timeout', /"2h" is out of range: 100ms to 1h/],
    ['env = ["A"]', 'env', /expected a table, got an array/],
    ['[env]\nrequired = "A"', 'env.required', /expected an array of variable names, got a string/],
    ['[env]\nrequired = [1]', 'env.required[0]', /expected a variable name, got an integer/],
    ['domains = "a.example.com"', 'domains', /expected an array of domain names, got a string/],
    ['domains = ["not a domain"]', 'domains[0]', /"not a domain": a DNS name/],
    ['cron = { schedule = "* * * * *" }', 'cron', /expected an array of tables \(\[\[cron\]\]\), got a table/],
    ['cron = [1]', 'cron[0]', /expected a table, got an integer/],
    ['[[cron]]\nschedule = 5\npath = "/x"', 'cron[0].schedule', /expected a cron schedule/],
    ['[[cron]]\nschedule = "61 * * * *"\npath = "/x"', 'cron[0].schedule', /"61 \* \* \* \*" is not a cron schedule: .*minute/],
    ['[[cron]]\nschedule = "0 0 3 * * * 2027"\npath = "/x"', 'cron[0].schedule', /is not a cron schedule: 5 fields \(minute hour day month weekday\), or 6 with seconds first/],
    ['[[cron]]\nschedule = "* * * * *"\npath = "x"', 'cron[0].path', /"x" is not a path starting with \//],
    ['[[cron]]\nschedule = "* * * * *"\npath = "/x"\nmethod = "TRACE"', 'cron[0].method', /"TRACE" is not one of "GET", "POST"/],
    ['[[cron]]\nschedule = "* * * * *"\npath = "/x"\ntimezone = "Mars/Base"', 'cron[0].timezone', /"Mars\/Base" is not a time zone/],
    ['[[cron]]\nschedule = "* * * * *"\npath = "/x"\noverlap = "queue"', 'cron[0].overlap', /"queue" is not one of "skip", "allow"/],
  ];
  for (const [text, key, message] of cases) {
    it(`${text.replace(/\n/g, ' ⏎ ')}`, () => {
      // the line the key (its last name) is written on
      const last = String(key.split('.').pop()).replace(/\[\d+\]$/, '');
      const line = text.split('\n').findIndex((l) => l.startsWith(`${last} =`)) + 1;
      const all = problems('cellhost.toml', text);
      expect(all).toHaveLength(1);
      expect(all[0]).toMatch(new RegExp(`^cellhost\\.toml line ${line}: ${key.replace(/[[\].]/g, '\\$&')}: `));
      expect(all[0]).toMatch(message);
    });
  }

  it('JSON: the same checks, lines counted in the JSON text, null is not a value', () => {
    const all = problems('cellhost.json', '{\n  "runtime": "node",\n  "port": "80",\n  "scaling": {\n    "min": null\n  },\n  "memory": 100.5\n}');
    expect(all).toEqual([
      'cellhost.json line 3: port: expected a port number from 1 to 65535, got a string ("80")',
      'cellhost.json line 5: scaling.min: expected a number of instances from 0 to 100, got null',
      expect.stringMatching(/^cellhost\.json line 7: memory: expected a size in MB .* got a float \(100\.5\)$/),
    ]);
    expect(problems('cellhost.json', '{"scaling": []}')).toEqual(['cellhost.json line 1: scaling: expected an object, got an array']);
  });

  it('several problems are all reported, in the order of the file', () => {
    const all = problems('cellhost.toml', 'port = "x"\nruntime = "node"\nmemory = 1\n[scaling]\nmax = -1\n');
    expect(all.map((p) => p.split(':')[0])).toEqual(['cellhost.toml line 1', 'cellhost.toml line 3', 'cellhost.toml line 5']);
  });

  it('min above max, a cron job without a schedule or path, names used twice', () => {
    expect(problems('cellhost.toml', '[scaling]\nmax = 2\nmin = 3\n')).toEqual(['cellhost.toml line 3: scaling.min: min (3) is more than max (2)']);
    expect(problems('cellhost.toml', 'x = 1\n[[cron]]\nmethod = "POST"\n')).toEqual([
      expect.stringMatching(/^cellhost\.toml line 1: x: unknown key/),
      'cellhost.toml line 2: cron[0]: a cron job needs schedule',
      'cellhost.toml line 2: cron[0]: a cron job needs path',
    ]);
    expect(problems('cellhost.toml', '[[cron]]\nname = "a"\nschedule = "@daily"\npath = "/a"\n[[cron]]\nname = "a"\nschedule = "@hourly"\npath = "/b"\n')).toEqual([
      'cellhost.toml line 5: cron[1]: cron job name "a" is used twice',
    ]);
    expect(problems('cellhost.toml', '[env]\nrequired = ["A", "B", "A"]')).toEqual(['cellhost.toml line 2: env.required[2]: variable "A" is listed twice']);
  });
});

describe('parseManifest: unknown keys', () => {
  it('at the top, in [scaling], [env] and [[cron]], each with its line and the keys that are known', () => {
    const all = problems('cellhost.toml', 'runtime = "node"\nmemroy = 512\n[scaling]\nmaximum = 3\nmin = 0\n[env]\noptional = ["A"]\n[[cron]]\nschedule = "@daily"\npath = "/x"\nretries = 3\n');
    expect(all).toEqual([
      'cellhost.toml line 2: memroy: unknown key (did you mean "memory"?): the manifest takes name, runtime, build, start, port, memory, plan, health_path, scaling, env, domains, cron',
      'cellhost.toml line 4: scaling.maximum: unknown key: [scaling] takes min, max, concurrency, idle_timeout, request_timeout',
      'cellhost.toml line 7: env.optional: unknown key: [env] takes required',
      'cellhost.toml line 11: cron[0].retries: unknown key: a cron job takes name, schedule, path, method, body, timezone, overlap',
    ]);
  });

  it('a top-level key written after a [table] header: the message says why it is unknown there', () => {
    const all = problems('cellhost.toml', '[scaling]\nmax = 2\nport = 3000\n');
    expect(all).toEqual([expect.stringMatching(/^cellhost\.toml line 3: scaling\.port: unknown key: .*belongs to it: put top-level keys before the first \[table\]$/)]);
  });

  it('dotted keys and inline tables are found on their own line', () => {
    expect(problems('cellhost.toml', 'port = 80\nscaling.mix = 1\n')).toEqual([expect.stringMatching(/^cellhost\.toml line 2: scaling\.mix: unknown key \(did you mean "min"\?\)/)]);
    expect(problems('cellhost.toml', 'port = 80\n\nenv = { required = [], also = 1 }\n')).toEqual([expect.stringMatching(/^cellhost\.toml line 3: env\.also: unknown key/)]);
    expect(problems('cellhost.json', '{\n  "scaling": {\n    "min": 0,\n    "Max": 1\n  }\n}')).toEqual([expect.stringMatching(/^cellhost\.json line 4: scaling\.Max: unknown key \(did you mean "max"\?\)/)]);
  });
});

describe('parseManifest: files that are not TOML or JSON', () => {
  it('TOML syntax errors name the line and column', () => {
    expect(problems('cellhost.toml', 'port = 8080\nruntime = node\n')).toEqual([expect.stringMatching(/^cellhost\.toml line 2: not valid TOML \(column \d+\): /)]);
    expect(problems('cellhost.toml', 'port = 8080\nport = 9090\n')).toEqual(['cellhost.toml line 2: not valid TOML (column 1): Defining a key multiple times is invalid']);
    expect(problems('cellhost.toml', 'build = "unterminated\n')).toEqual([expect.stringMatching(/^cellhost\.toml line 1: not valid TOML/)]);
  });

  it('JSON syntax errors, duplicate keys and a top level that is not an object', () => {
    expect(problems('cellhost.json', '{\n  "port": 8080,\n}')).toEqual(['cellhost.json line 3: not valid JSON (column 1): a property name in double quotes was expected']);
    expect(problems('cellhost.json', '{\n  // the port\n  "port": 8080\n}')).toEqual(['cellhost.json line 2: not valid JSON (column 3): JSON has no comments']);
    expect(problems('cellhost.json', '{\n  "port": 1,\n  "port": 2\n}')).toEqual(['cellhost.json line 3: not valid JSON (column 3): "port" appears twice (lines 2 and 3)']);
    expect(problems('cellhost.json', '\n["port"]')).toEqual(['cellhost.json line 2: not valid JSON (column 1): the file must hold one JSON object, not an array']);
    expect(problems('cellhost.json', '')).toEqual(['cellhost.json line 1: not valid JSON (column 1): a value was expected']);
  });

  it('the deployment error lists the problems with the file, line and key, under ERR_MANIFEST_INVALID', () => {
    const r = parseManifest('cellhost.toml', 'port = "x"\nfoo = 1\n');
    if (r.ok) throw new Error('accepted');
    const err = manifestError('cellhost.toml', r.problems);
    expect(err.code).toBe('ERR_MANIFEST_INVALID');
    expect(err.message).toBe('cellhost.toml line 1: port: expected a port number from 1 to 65535, got a string ("x"); cellhost.toml line 2: foo: unknown key: the manifest takes name, runtime, build, start, port, memory, plan, health_path, scaling, env, domains, cron');
    expect(err.details?.problems).toHaveLength(2);
  });
});

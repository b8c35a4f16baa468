// An SSH git server for tests (ssh2's server): serves the repositories under a root to one
// client key (git-upload-pack only: read-only), like a forge's deploy key. Prints "listening".
// usage: node git-ssh-server.mjs <project root> <port> <host key file> <authorized public key file>
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';

const [root, port, hostKeyFile, authorizedFile] = process.argv.slice(2);
const allowed = ssh2.utils.parseKey(fs.readFileSync(authorizedFile));

new ssh2.Server({ hostKeys: [fs.readFileSync(hostKeyFile)] }, (client) => {
  client.on('error', () => {});
  client.on('authentication', (ctx) => {
    const pub = allowed.getPublicSSH();
    if (ctx.method === 'publickey' && ctx.key.algo === allowed.type && ctx.key.data.length === pub.length && crypto.timingSafeEqual(ctx.key.data, pub)) {
      if (!ctx.signature) return ctx.accept(); // the client asks whether the key would do
      if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
    }
    ctx.reject(['publickey']);
  });
  client.on('ready', () => {
    client.on('session', (accept) => {
      const session = accept();
      session.on('env', (accept) => accept?.());
      session.on('exec', (accept, reject, info) => {
        const m = /^git-upload-pack '?\/?([A-Za-z0-9._/-]+?)'?$/.exec(info.command);
        if (!m || m[1].includes('..')) return reject();
        const stream = accept();
        const child = spawn('git-upload-pack', [path.join(root, m[1])], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, GIT_CONFIG_NOSYSTEM: '1' } });
        stream.pipe(child.stdin);
        child.stdout.pipe(stream, { end: false });
        child.stderr.pipe(stream.stderr);
        child.on('close', (code) => {
          stream.exit(code ?? 1);
          stream.end();
        });
      });
    });
  });
}).listen(Number(port), '0.0.0.0', () => console.log('listening'));

// The pre-receive hook of the platform's repositories, and the platform's end of it.
//
// git http-backend runs receive-pack, which runs this hook after the pushed objects arrived (in a
// quarantine dir) and before any ref moves; whatever the hook prints reaches the pushing terminal
// as `remote:` lines, and a non-zero exit rejects every ref of the push. The hook talks to the
// platform over two sockets the platform gave that very http-backend child as its fds 3 and 4
// (receive-pack and the hook inherit them): so the channel belongs to the one authenticated
// request that made it, and no token or address has to be handed to the hook.
//   fd 3, hook → platform: the quarantine dir, then receive-pack's lines "<old> <new> <ref>", then "."
//   fd 3, platform → hook: the text to print (build output), until the platform closes its end
//   fd 4, platform → hook: the verdict, "0" (accept) or "1" (reject)
// If the platform is not there (a socket closed early, a missing fd), the hook rejects the push.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';

export const PRE_RECEIVE_HOOK = `#!/bin/sh
# cellhost's pre-receive hook: the platform decides what a push does (deploys, previews) and
# streams its build output here; see runtime/git/push-hook.ts.
{ printf '%s\\n' "$GIT_QUARANTINE_PATH" && cat && printf '.\\n'; } >&3 || exit 1
cat <&3
read -r verdict <&4 || exit 1
[ "$verdict" = 0 ]
`;

/** writes the platform's hooks (only pre-receive) into a root-only dir */
export async function writeHooks(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'pre-receive');
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, PRE_RECEIVE_HOOK, { mode: 0o700 });
  await fs.rename(tmp, file);
}

export const ZERO_OID = /^0+$/;

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

export interface PushRequest {
  /** where receive-pack keeps the pushed objects until the refs move ('' when it has none) */
  quarantine: string;
  updates: RefUpdate[];
}

/** what a push handler prints on the pushing terminal */
export interface PushOutput {
  write(text: string): void;
}

const MAX_REQUEST_BYTES = 1024 * 1024;
const LINE = /^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/\S+)$/;

/** reads the hook's request from `channel`: null when it is malformed or the hook went away */
export function readPushRequest(channel: Duplex): Promise<PushRequest | null> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (value: PushRequest | null) => {
      channel.off('data', onData);
      channel.off('end', onEnd);
      channel.off('close', onEnd);
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.length > MAX_REQUEST_BYTES) return finish(null);
      if (!text.endsWith('\n.\n')) return;
      const [quarantine, ...lines] = text.slice(0, -3).split('\n');
      const updates: RefUpdate[] = [];
      for (const line of lines) {
        const m = LINE.exec(line);
        if (!m) return finish(null);
        updates.push({ old: m[1]!, new: m[2]!, ref: m[3]! });
      }
      finish({ quarantine: quarantine ?? '', updates });
    };
    const onEnd = () => finish(null);
    channel.on('data', onData);
    channel.once('end', onEnd);
    channel.once('close', onEnd);
  });
}

/** the platform's answer: `handle` prints through the channel and says whether the push is accepted */
export async function answerPush(channel: Duplex, verdict: Duplex, handle: (out: PushOutput) => Promise<boolean>): Promise<boolean> {
  const out: PushOutput = {
    write(text) {
      if (!channel.destroyed && channel.writable) channel.write(text);
    },
  };
  let ok = false;
  try {
    ok = await handle(out);
  } finally {
    await new Promise<void>((r) => (channel.writable ? channel.end(r) : r()));
    if (verdict.writable) verdict.end(ok ? '0\n' : '1\n');
  }
  return ok;
}

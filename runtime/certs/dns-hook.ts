// DNS-01 through the user's hook: `HOOK set NAME VALUE` publishes the TXT record, `HOOK unset
// NAME VALUE` removes it (the contract of acme.sh's and lego's exec providers).
import { spawn } from 'node:child_process';

export type DnsHook = (action: 'set' | 'unset', name: string, value: string) => Promise<void>;

export function createDnsHook(command: string, timeoutMs = 120_000): DnsHook {
  return (action, name, value) =>
    new Promise((resolve, reject) => {
      const child = spawn(command, [action, name, value], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
      let output = '';
      const keep = (b: Buffer) => {
        // the last few lines are what explains a failure
        output = (output + b.toString()).slice(-2000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('error', (err) => reject(new Error(`the DNS hook ${command} could not run: ${err.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else {
          const why = signal ? `was killed (${signal}${signal === 'SIGKILL' ? `, over ${timeoutMs / 1000} s` : ''})` : `exited with ${code}`;
          reject(new Error(`the DNS hook "${action} ${name}" ${why}${output.trim() ? `: ${output.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
        }
      });
    });
}

import net from 'node:net';

/**
 * Writes raw bytes to 127.0.0.1:port and resolves with everything the server sent before it closed
 * (or after `waitMs`): for requests no HTTP client would send.
 */
export function sendRaw(port: number, data: string | Buffer, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(t);
      sock.destroy();
      resolve(got);
    };
    const t = setTimeout(done, waitMs);
    sock.on('data', (b) => (got += b.toString('latin1')));
    sock.on('close', done);
    sock.on('error', done);
    sock.write(data);
  });
}

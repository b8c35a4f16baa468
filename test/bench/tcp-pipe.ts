// Node's floor for the added-p99 rows: a Node process that pipes each client connection's bytes
// to its own connection to the app, with no HTTP in between. What it adds over direct is what an
// event loop in the path costs on this host before any proxy code runs.
// usage: node --import tsx test/bench/tcp-pipe.ts <upstream host> <upstream port> <listen port>
import net from 'node:net';

const [host, upstreamPort, port] = process.argv.slice(2) as [string, string, string];

net
  .createServer((client) => {
    const upstream = net.connect(Number(upstreamPort), host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  })
  .listen(Number(port), '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));

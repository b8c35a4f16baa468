// Node's floor for the added-p99 rows: a Node process that pipes each client connection's bytes
// to its own connection to the app, with no HTTP in between. What it adds over direct is what an
// event loop in the path costs on this host before any proxy code runs. Given a certificate and
// key it terminates TLS first (node:tls, as the router's HTTPS listener): the floor of the HTTPS
// rows.
// usage: node --import tsx test/bench/tcp-pipe.ts <upstream host> <upstream port> <listen port> [<cert file> <key file>]
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [host, upstreamPort, port, cert, key] = process.argv.slice(2) as [string, string, string, string?, string?];

function pipeToUpstream(client: net.Socket): void {
  const upstream = net.connect(Number(upstreamPort), host);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}

const server = cert && key ? tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, pipeToUpstream) : net.createServer(pipeToUpstream);
server.listen(Number(port), '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));

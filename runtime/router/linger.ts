// Ending a connection while its client is still sending: an answer given before the request's
// body arrived (a refusal, an app answering an upload early), with the connection closing after
// it. Closing the socket with bytes unread makes the kernel answer them with a reset, and a client
// still writing its upload gets EPIPE or ECONNRESET instead of the answer it was sent. As nginx's
// lingering close: the answer goes out with a FIN, what still arrives is read and dropped, and the
// socket is destroyed once the client closes its side, or after LINGER_MS at most.
import type net from 'node:net';

/** how long a closing connection's late bytes are read and dropped at most */
export const LINGER_MS = 5000;

export function lingerClose(socket: net.Socket, ms = LINGER_MS): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => {
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
  socket.on('error', () => socket.destroy());
  socket.end();
  // flowing with no 'data' listener: what arrives is dropped
  socket.resume();
}

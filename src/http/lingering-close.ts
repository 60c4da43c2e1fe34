/**
 * Lingering close: how a connection ends after a response that was sent
 * before the request's body was read (a 413 on the Content-Length, a 401, a
 * refusal mid-upload).
 *
 * Node's own close ends the socket and destroys it as soon as the response is
 * written. The client is still uploading, so the kernel closes a socket with
 * unread bytes and sends a reset, and a reset makes the peer drop what it had
 * not read yet: the client sees EPIPE or ECONNRESET, and behind a proxy
 * (docker-proxy, kube-proxy, a load balancer) the response itself is lost.
 * CI saw exactly that: a 50 MB upload to the container got no answer at all.
 *
 * So, as nginx's `lingering_close`: the response is written, the write side is
 * shut (FIN), and what the client still sends is read and thrown away until it
 * closes its side, goes quiet, or the time is up; only then is the socket
 * destroyed. The client reads the refusal and stops; nothing is kept.
 */

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface LingerLimits {
  /** Longest the connection lingers in all, ms (nginx's `lingering_time`, 30 s there). */
  maxMs: number;
  /** Closes sooner once the client has sent nothing for this long, ms (nginx's `lingering_timeout`, 5 s). */
  idleMs: number;
}

/** Long enough for a client on a slow link to see the refusal and stop; short enough not to hold a shutdown. */
export const LINGER: LingerLimits = { maxMs: 10_000, idleMs: 2_000 };

/**
 * Makes the close of `request`'s connection, when Node's HTTP server asks for
 * it once the response is written, a lingering one.
 */
export function lingerOnClose(request: IncomingMessage, limits: LingerLimits = LINGER): void {
  // Node's HTTP server ends a `Connection: close` response with `socket.destroySoon()`.
  request.socket.destroySoon = function lingeringClose(this: Socket) {
    // The rest of the body is read off the wire and dropped, whoever was reading it before
    // (a parser that gave up at the limit may have paused it).
    request.unpipe();
    request.resume();
    const destroy = () => this.destroy();
    const cap = setTimeout(destroy, limits.maxMs);
    cap.unref();
    this.setTimeout(limits.idleMs, destroy);
    this.once('close', () => clearTimeout(cap));
    // Writes the FIN after the response; the socket is half-open (Node's HTTP server allows it),
    // and once the client's own FIN comes, both sides have ended and the socket destroys itself.
    this.end();
  };
}

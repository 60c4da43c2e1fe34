/**
 * The lingering close's bounds, on a bare Node HTTP server that refuses every
 * request without reading its body: a client that closes on the answer ends it
 * at once, a quiet one after the idle limit, one that never stops sending at
 * the cap.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lingerOnClose } from '../../src/http/lingering-close.js';
import { rawRequest } from '../helpers/raw-http.js';

const LIMITS = { maxMs: 1500, idleMs: 400 };
const HEAD = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n';
let server: Server;
let port: number;
let linger = true;
/** For the last request: ms from its response to the server closing the connection. */
let closedAfter: Promise<number>;

beforeAll(async () => {
  server = createServer((request, response) => {
    if (linger) lingerOnClose(request, LIMITS);
    const answered = performance.now();
    closedAfter = new Promise((resolve) => request.socket.once('close', () => resolve(performance.now() - answered)));
    response.writeHead(413, { connection: 'close', 'content-length': 2 }).end('no');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('lingerOnClose', () => {
  it('an upload refused mid-way: answered without a reset, where the plain close reset it', async () => {
    const body = Buffer.alloc(32 * 1024 * 1024);
    const lingered = await rawRequest(port, [HEAD, body]);
    expect({ status: lingered.status, error: lingered.error }).toEqual({ status: 413, error: undefined });
    linger = false;
    try {
      expect((await rawRequest(port, [HEAD, body])).error).toMatch(/EPIPE|ECONNRESET/);
    } finally {
      linger = true;
    }
  });

  it('a client that closes on the answer ends it at once', async () => {
    expect((await rawRequest(port, HEAD)).status).toBe(413);
    expect(await closedAfter).toBeLessThan(LIMITS.idleMs);
  });

  it('a client that goes quiet without closing is closed after the idle limit', async () => {
    // The client cannot see that close (the server's FIN came with the answer): it is timed on the server.
    const res = await rawRequest(port, HEAD, { halfOpen: true, timeoutMs: LIMITS.maxMs + 1000 });
    expect(res.status).toBe(413);
    const ms = await closedAfter;
    expect(ms).toBeGreaterThan(LIMITS.idleMs - 50);
    expect(ms).toBeLessThan(LIMITS.maxMs - 200);
  });

  it('a client that never stops sending is closed at the cap (its next write is reset)', async () => {
    const res = await rawRequest(port, HEAD, { halfOpen: true, trickle: Buffer.alloc(1000), everyMs: 50, timeoutMs: 10_000 });
    expect(res.status).toBe(413);
    expect(res.error).toMatch(/EPIPE|ECONNRESET/);
    const ms = await closedAfter;
    expect(ms).toBeGreaterThan(LIMITS.maxMs - 50);
    expect(ms).toBeLessThan(LIMITS.maxMs + 500);
  });
});

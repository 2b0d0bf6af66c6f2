// Peer server for tendril's benchmarks: Node.js's built-in http module, no npm packages.
//
// Run: node bench/peers/node_server.js --port 0 --host 127.0.0.1
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { parseArgs } = require('node:util');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const HELLO = Buffer.from('Hello, World!');
const HASHES = new Set(['md5', 'sha256']);

// Registered long-poll waiters: callbacks that /notify calls with n.
const waiters = new Set();

function sendText(res, body, type = 'text/plain') {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function wait(req, res) {
  // Status line and headers go out now: Node uses chunked encoding for
  // HTTP/1.1 and a close-delimited body for HTTP/1.0.
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.flushHeaders();
  const waiter = (n) => res.end(String(n));
  waiters.add(waiter);
  // 'close' fires when the response is done or the connection is gone.
  res.on('close', () => waiters.delete(waiter));
}

function notify(res) {
  const n = waiters.size;
  const woken = [...waiters];
  waiters.clear();
  for (const waiter of woken) waiter(n);
  sendText(res, String(n));
}

function hash(req, res, url) {
  const alg = url.searchParams.get('alg') || 'md5';
  if (!HASHES.has(alg)) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('unknown alg\n');
    return;
  }
  // Streamed: Node answers Expect: 100-continue and de-chunks by itself.
  const digest = crypto.createHash(alg);
  req.on('data', (chunk) => digest.update(chunk));
  req.on('end', () => sendText(res, digest.digest('hex'), 'text/plain; charset=utf-8'));
}

const server = http.createServer((req, res) => {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  if (path === '/hash' && (req.method === 'POST' || req.method === 'PUT')) {
    hash(req, res, new URL(req.url, 'http://localhost'));
    return;
  }
  switch (path) {
    case '/plaintext':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length });
      res.end(HELLO);
      break;
    case '/wait':
      wait(req, res);
      break;
    case '/notify':
      notify(res);
      break;
    default:
      sendText(res, String(waiters.size));
  }
});

function shutdown() {
  server.close();
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(Number(args.port), args.host, () => {
  process.stdout.write(`listening on http://${args.host}:${server.address().port}\n`);
});

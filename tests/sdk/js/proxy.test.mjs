// The official JS SDK (@fly/sprites 0.1.0, unchanged, from npm) against the
// local engine: the TCP proxy (spec §9) through sprite.proxyPort() and port
// events (spec §6) through sprite.watchPorts(). tests/sdk/run_js.sh starts
// the engine and sets SPRITES_API_URL and SPRITES_TOKEN. Every test makes
// its own sprite and deletes it at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });

const run = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
let serial = 0;
const uniqueName = (label) => `sdk-proxy-${run}-${label}-${++serial}`;

async function withSprite(label, fn) {
  const sprite = await client.createSprite(uniqueName(label));
  try {
    return await fn(sprite);
  } finally {
    await sprite.delete().catch(() => {});
  }
}

// The next port event of `type` for `port` from a PortWatcher.
async function nextPortEvent(watcher, type, port) {
  for (;;) {
    const event = await watcher.next();
    assert.ok(event, `the port watch ended before ${type} ${port}`);
    if (event.type === type && event.port === port) return event;
  }
}

const ECHO = `
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 9000))
s.listen(16)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

test('watchPorts and proxyPort: an http.server in the sprite is announced and reachable', async () => {
  await withSprite('http', async (sprite) => {
    await sprite.execFile('sh', ['-c', 'mkdir -p /tmp/www && echo hello-through-the-proxy > /tmp/www/hello.txt']);
    const watcher = await sprite.watchPorts();
    try {
      const list = await watcher.next();
      assert.equal(list.type, 'port_list');
      assert.ok(Array.isArray(list.ports));

      const server = sprite.spawn('python3', ['-m', 'http.server', '8080', '--bind', '127.0.0.1', '--directory', '/tmp/www']);
      server.on('error', () => {});
      const opened = await nextPortEvent(watcher, 'port_opened', 8080);
      assert.equal(opened.address, '127.0.0.1');
      assert.ok(opened.pid > 0);

      const session = await sprite.proxyPort(0, 8080);
      try {
        const port = Number(session.localAddr().split(':').pop());
        const response = await fetch(`http://localhost:${port}/hello.txt`);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), 'hello-through-the-proxy\n');
      } finally {
        session.close();
      }

      server.kill('SIGTERM');
      await server.wait().catch(() => {});
      const closed = await nextPortEvent(watcher, 'port_closed', 8080);
      assert.equal(closed.address, '127.0.0.1');
    } finally {
      watcher.close();
    }
  });
});

test('proxyPort: 4 MiB through an echo server in the sprite come back identical', async () => {
  await withSprite('echo', async (sprite) => {
    const watcher = await sprite.watchPorts();
    const server = sprite.spawn('python3', ['-c', ECHO]);
    server.on('error', () => {});
    try {
      await nextPortEvent(watcher, 'port_opened', 9000);
    } finally {
      watcher.close();
    }
    const session = await sprite.proxyPort(0, 9000, '127.0.0.1');
    try {
      const port = Number(session.localAddr().split(':').pop());
      const data = randomBytes(4 << 20);
      const back = await new Promise((resolve, reject) => {
        const chunks = [];
        let received = 0;
        const socket = connect(port, 'localhost', () => socket.write(data));
        socket.on('data', (chunk) => {
          chunks.push(chunk);
          received += chunk.length;
          if (received >= data.length) {
            socket.end();
            resolve(Buffer.concat(chunks));
          }
        });
        socket.on('error', reject);
      });
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data));
    } finally {
      session.close();
      server.kill('SIGKILL');
      await server.wait().catch(() => {});
    }
  });
});

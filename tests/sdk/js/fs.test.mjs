// The official JS SDK (@fly/sprites 0.1.0, unchanged, from npm) against the
// local engine: the filesystem API (spec §10) through sprite.filesystem():
// writeFile/readFile, mkdir, readdir, stat, exists, rm, rename, copyFile,
// chmod, chown and watch. tests/sdk/run_js.sh starts the engine and sets
// SPRITES_API_URL and SPRITES_TOKEN. Every test makes its own sprite and
// deletes it at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });

const run = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
let serial = 0;
const uniqueName = (label) => `sdk-fs-${run}-${label}-${++serial}`;

async function withSprite(label, fn) {
  const sprite = await client.createSprite(uniqueName(label));
  try {
    return await fn(sprite);
  } finally {
    await sprite.delete().catch(() => {});
  }
}

test('writeFile and readFile round trip text and 8 MiB of binary, with a mode', async () => {
  await withSprite('rw', async (sprite) => {
    const fs = sprite.filesystem('/home/sprite');
    await fs.writeFile('notes/hello.txt', 'hello, sprite\n');
    assert.equal(await fs.readFile('notes/hello.txt', 'utf8'), 'hello, sprite\n');
    assert.equal(await fs.readFile('/home/sprite/notes/hello.txt', 'utf8'), 'hello, sprite\n');

    const blob = randomBytes(8 << 20);
    await fs.writeFile('blob.bin', blob, { mode: 0o600 });
    const back = await fs.readFile('blob.bin');
    assert.equal(back.length, blob.length);
    assert.ok(back.equals(blob));
    const st = await fs.stat('blob.bin');
    assert.equal(st.size, blob.length);
    assert.equal(st.mode, 0o600);
    assert.ok(st.isFile());

    // The process in the sprite sees the same file.
    const { stdout } = await sprite.execFile('cat', ['/home/sprite/notes/hello.txt']);
    assert.equal(stdout.toString(), 'hello, sprite\n');

    await fs.writeJSON('cfg.json', { a: 1 });
    assert.deepEqual(await fs.readJSON('cfg.json'), { a: 1 });
    await fs.appendFile('cfg.json', '\n');
    assert.equal(await fs.readFile('cfg.json', 'utf8'), '{"a":1}\n');
  });
});

test('mkdir (recursive or not), readdir, stat, exists, rm', async () => {
  await withSprite('dirs', async (sprite) => {
    const fs = sprite.filesystem('/home/sprite');
    await fs.mkdir('plain');  // no mkdirParents sent: the server's default makes it work
    await fs.mkdir('a/b/c', { recursive: true });
    await fs.writeFile('a/one.txt', '1');
    await fs.writeFile('a/b/two.txt', '22');

    assert.deepEqual((await fs.readdir('a')).sort(), ['b', 'one.txt']);
    const dirents = await fs.readdir('a', { withFileTypes: true });
    const b = dirents.find((d) => d.name === 'b');
    assert.ok(b.isDirectory());
    assert.deepEqual(await fs.readdir('plain'), []);  // mkdir removed its .keep
    assert.deepEqual((await fs.readdir('a', { recursive: true })).sort(),
      ['b', 'c', 'one.txt', 'two.txt']);
    assert.deepEqual(await fs.readdir('a', { recursive: true, pattern: '*.txt' }),
      ['two.txt', 'one.txt']);

    const st = await fs.stat('a/b/two.txt');
    assert.equal(st.size, 2);
    assert.ok(st.isFile());
    assert.equal(await fs.exists('a/one.txt'), true);
    assert.equal(await fs.exists('a/nothing'), false);

    await assert.rejects(fs.readFile('a/nothing'), (e) => e.code === 'ENOENT');
    await assert.rejects(fs.readFile('a'), (e) => e.code === 'EISDIR');
    await assert.rejects(fs.rm('a'), (e) => e.code === 'ENOTEMPTY');
    await fs.rm('a/one.txt');
    await fs.rm('a', { recursive: true });
    assert.equal(await fs.exists('a'), false);
    await fs.rm('a', { force: true });  // 404 swallowed
    await assert.rejects(fs.rm('a'), (e) => e.code === 'ENOENT');
  });
});

test('rename, copyFile, chmod and chown', async () => {
  await withSprite('ops', async (sprite) => {
    const fs = sprite.filesystem('/home/sprite');
    await fs.writeFile('src/file.txt', 'content');
    await fs.writeFile('src/sub/deep.txt', 'deep');

    await fs.rename('src/file.txt', 'renamed.txt');
    assert.equal(await fs.readFile('renamed.txt', 'utf8'), 'content');
    assert.equal(await fs.exists('src/file.txt'), false);
    await assert.rejects(fs.rename('src/file.txt', 'x'), (e) => e.code === 'ENOENT');

    await fs.copyFile('renamed.txt', 'copy.txt');
    assert.equal(await fs.readFile('copy.txt', 'utf8'), 'content');
    await fs.copyFile('src', 'src-copy', { recursive: true, preserveAttrs: true });
    assert.equal(await fs.readFile('src-copy/sub/deep.txt', 'utf8'), 'deep');
    await assert.rejects(fs.copyFile('src', 'nope'), (e) => e.code === 'EISDIR');

    await fs.chmod('copy.txt', 0o751);
    assert.equal((await fs.stat('copy.txt')).mode, 0o751);
    await fs.chmod('src-copy', 0o700, { recursive: true });
    assert.equal((await fs.stat('src-copy/sub/deep.txt')).mode, 0o700);

    await fs.chown('copy.txt', { uid: 0, gid: 0 });
    await fs.chown('src-copy', { uid: 'root', gid: 'root', recursive: true });
    await assert.rejects(fs.chown('copy.txt', { uid: 'no-such-user' }), (e) => e.code === 'EINVAL');
    const { stdout } = await sprite.execFile('stat', ['-c', '%a %u', '/home/sprite/copy.txt']);
    assert.equal(stdout.toString().trim(), '751 0');
  });
});

test('watch reports a write in a watched directory, and close ends it', async () => {
  await withSprite('watch', async (sprite) => {
    const fs = sprite.filesystem('/home/sprite');
    await fs.mkdir('watched');
    const watcher = await fs.watch('watched', { recursive: true });
    const subscribed = await watcher.next();
    assert.equal(subscribed.type, 'subscribed');
    assert.deepEqual(subscribed.paths, ['/home/sprite/watched']);
    await sprite.execFile('sh', ['-c', 'echo hi > /home/sprite/watched/new.txt']);
    let seen = null;
    for (;;) {
      const event = await watcher.next();
      assert.ok(event, 'the watch ended before the event');
      assert.equal(event.type, 'event');
      if (event.path === '/home/sprite/watched/new.txt') {
        seen = event;
        break;
      }
    }
    assert.ok(['create', 'write'].includes(seen.event));
    assert.equal(typeof seen.timestamp, 'string');
    assert.equal(seen.isDir, false);
    watcher.close();
    assert.ok(watcher.isClosed());
    while ((await watcher.next()) !== null) { /* events queued before the close */ }
  });
});

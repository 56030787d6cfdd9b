// The official JS SDK against the local engine: a sprite's lifecycle
// (status, watchSprites, restart, check, upgrade). tests/sdk/run_js.sh starts
// the engine with short idle timeouts so running -> warm -> cold is quick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
const unique = () => `sdk-life-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

async function statusOf(name) {
  return (await client.getSprite(name)).status;
}

async function waitForStatus(name, wanted, limitMs = 20000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const status = await statusOf(name);
    if (status === wanted) return;
    if (Date.now() > end) assert.fail(`${name} stayed ${status}, never ${wanted}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a sprite is cold, runs on exec, goes warm then cold when idle, and wakes again', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    assert.equal(await statusOf(name), 'cold');
    await sprite.execFile('sh', ['-c', 'echo started > /tmp/marker']);
    // The engine under test goes warm after 1 s idle and cold 1 s later.
    await waitForStatus(name, 'warm');
    await waitForStatus(name, 'cold');
    const again = await sprite.execFile('cat', ['/tmp/marker']);
    assert.equal(again.stdout.toString(), 'started\n'); // the filesystem survived
    assert.equal(await statusOf(name), 'running');
  } finally {
    await client.deleteSprite(name);
  }
});

test('watchSprites streams each status change of matching sprites', async () => {
  const prefix = unique();
  const name = `${prefix}-w`;
  await client.createSprite(name);
  const stream = await client.watchSprites({ prefix });
  try {
    const first = await stream.next();
    assert.equal(first.name, name);
    assert.equal(first.status, 'cold');
    assert.ok(first.timestamp instanceof Date);
    assert.equal(typeof first.organization.running, 'number');

    await client.sprite(name).execFile('true');
    const seen = [];
    while (!seen.includes('cold')) {
      const event = await stream.next();
      assert.ok(event, 'the stream ended early');
      if (event.type === 'heartbeat') continue;
      assert.equal(event.name, name);
      seen.push(event.status);
    }
    assert.deepEqual(seen, ['running', 'warm', 'cold']);
  } finally {
    stream.close();
    await client.deleteSprite(name);
  }
});

test('restart ends every process and the sprite answers again', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    const sleeper = sprite.spawn('sleep', ['300']);
    await new Promise((r) => sleeper.once('spawn', r));
    assert.equal((await sprite.listSessions()).length, 1);

    const result = await sprite.restart();
    assert.equal(result.spriteName, name);
    assert.equal(typeof result.message, 'string');
    assert.notEqual(await sleeper.wait(), 0); // killed by the restart
    assert.equal((await sprite.listSessions()).length, 0);
    assert.equal((await sprite.execFile('echo', ['back'])).stdout.toString(), 'back\n');
  } finally {
    await client.deleteSprite(name);
  }
});

test('check wakes the sprite and reports its health', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    const health = await sprite.check();
    assert.equal(health.spriteName, name);
    assert.equal(health.status, 'ok');
    assert.ok(health.checkedAt instanceof Date && !Number.isNaN(health.checkedAt.getTime()));
    assert.equal(await statusOf(name), 'running');
  } finally {
    await client.deleteSprite(name);
  }
});

test('upgrade succeeds (there is one runtime locally)', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    await sprite.upgrade();
  } finally {
    await client.deleteSprite(name);
  }
});

test('delete stops a running sprite and its sessions', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  const sleeper = sprite.spawn('sleep', ['300']);
  await new Promise((r) => sleeper.once('spawn', r));
  await client.deleteSprite(name);
  assert.notEqual(await sleeper.wait(), 0);
  await assert.rejects(client.getSprite(name));
});

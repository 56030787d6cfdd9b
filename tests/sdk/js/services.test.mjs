// The official JS SDK (@fly/sprites, unchanged, from npm) against the local
// engine: services (spec §11). tests/sdk/run_js.sh starts the engine (with
// 1 s idle and cold timeouts) and sets SPRITES_API_URL and SPRITES_TOKEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
const unique = () => `sdk-svc-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

function checkEvents(events, service) {
  assert.ok(events.length > 0, 'no events');
  for (const e of events) assert.equal(typeof e.timestamp, 'number', JSON.stringify(e));
  const last = events[events.length - 1];
  assert.equal(last.type, 'complete');
  assert.equal(last.logFiles.combined, `/.sprite/logs/services/${service}.log`);
}

test('create, list, get, stop, start, restart, logs and delete a service', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    const created = await collect(
      await sprite.createService('web', { cmd: 'sh', args: ['-c', 'echo hello; exec sleep 1000'], httpPort: 8080 }, '500ms'),
    );
    checkEvents(created, 'web');
    assert.equal(created[0].type, 'started');
    assert.ok(created.some((e) => e.type === 'stdout' && e.data === 'hello\n'));

    const list = await sprite.listServices();
    assert.deepEqual(list.map((s) => s.name), ['web']);
    const web = await sprite.getService('web');
    assert.equal(web.cmd, 'sh');
    assert.deepEqual(web.args, ['-c', 'echo hello; exec sleep 1000']);
    assert.equal(web.httpPort, 8080);
    assert.equal(web.state.status, 'running');
    assert.equal(typeof web.state.pid, 'number');
    assert.equal(web.state.restartCount, 0);

    // Only one service may have an http_port.
    await assert.rejects(sprite.createService('other', { cmd: 'true', httpPort: 8081 }), /conflict/i);

    const stopped = await collect(await sprite.stopService('web', '5s'));
    checkEvents(stopped, 'web');
    assert.deepEqual(stopped.map((e) => e.type), ['stopping', 'exit', 'stopped', 'complete']);
    assert.equal((await sprite.getService('web')).state.status, 'stopped');
    await assert.rejects(sprite.stopService('web'), /not running/);

    const started = await collect(await sprite.startService('web', '300ms'));
    checkEvents(started, 'web');
    assert.equal(started[0].type, 'started');
    assert.equal((await sprite.getService('web')).state.status, 'running');

    const restarted = await collect(await sprite.restartService('web', '300ms'));
    checkEvents(restarted, 'web');
    assert.ok(restarted.some((e) => e.type === 'stopped'));
    assert.ok(restarted.some((e) => e.type === 'started'));

    const logs = await collect(await sprite.getServiceLogs('web', { lines: 50 }));
    checkEvents(logs, 'web');
    assert.ok(logs.some((e) => e.type === 'stdout' && e.data === 'hello\n'));
    const two = await collect(await sprite.getServiceLogs('web', { lines: 2 }));
    assert.equal(two.length, 3); // two events and complete

    await sprite.deleteService('web');
    assert.deepEqual(await sprite.listServices(), []);
    await assert.rejects(sprite.getService('web'), /not found/i);
    await assert.rejects(sprite.deleteService('web'), /not found/i);
  } finally {
    await client.deleteSprite(name);
  }
});

test('signal a service: TERM restarts it, a bad signal and an unknown service are refused', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    await collect(await sprite.createService('loop', { cmd: 'sleep', args: ['1000'] }, '0s'));
    const before = await sprite.getService('loop');
    // Following the logs keeps the sprite awake through the restart's backoff.
    const follow = collect(await sprite.getServiceLogs('loop', { lines: 0, duration: '3s' }));
    await sprite.signalService('loop', 'TERM');
    const events = await follow;
    const types = events.map((e) => e.type);
    assert.ok(types.includes('exit'), JSON.stringify(events));
    assert.equal(events.find((e) => e.type === 'exit').exitCode, 143);
    assert.ok(types.indexOf('started') > types.indexOf('exit'), JSON.stringify(events));
    const after = await sprite.getService('loop');
    assert.equal(after.state.restartCount, 1);
    assert.notEqual(after.state.pid, before.state.pid);

    await assert.rejects(sprite.signalService('loop', 'NOPE'), /Invalid signal/);
    await assert.rejects(sprite.signalService('nosuch', 'TERM'), /not found/i);
    await collect(await sprite.stopService('loop'));
    await assert.rejects(sprite.signalService('loop', 'HUP'), /not running/);
  } finally {
    await client.deleteSprite(name);
  }
});

test('needs: unknown and cyclic dependencies are refused; a needed service cannot be deleted', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    await assert.rejects(sprite.createService('a', { cmd: 'true', needs: ['missing'] }), /status 400/);
    await collect(await sprite.createService('db', { cmd: 'sleep', args: ['1000'] }, '0s'));
    await collect(await sprite.createService('app', { cmd: 'sleep', args: ['1000'], needs: ['db'] }, '0s'));
    await assert.rejects(sprite.createService('db', { cmd: 'sleep', needs: ['app'] }), /status 400/);
    await assert.rejects(sprite.deleteService('db'), /conflict/i);
    await sprite.deleteService('app');
    await sprite.deleteService('db');
  } finally {
    await client.deleteSprite(name);
  }
});

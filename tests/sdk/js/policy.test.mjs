// The official JS SDK (@fly/sprites, unchanged, from npm) against the local
// engine: policies (spec §8). tests/sdk/run_js.sh starts the engine and sets
// SPRITES_API_URL and SPRITES_TOKEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
const unique = () => `sdk-pol-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

test('network policy: empty by default, replaced, read back, an invalid one refused', async () => {
  const sprite = await client.createSprite(unique());
  try {
    assert.deepEqual(await sprite.getNetworkPolicy(), { rules: [] });
    const policy = {
      rules: [
        { include: 'defaults' },
        { domain: 'example.com', action: 'allow' },
        { domain: '*.example.com', action: 'allow' },
        { domain: 'blocked.com', action: 'deny' },
      ],
    };
    await sprite.updateNetworkPolicy(policy); // the SDK wants 204 exactly
    assert.deepEqual(await sprite.getNetworkPolicy(), policy);
    await assert.rejects(
      sprite.updateNetworkPolicy({ rules: [{ domain: 'a.com', include: 'defaults' }] }),
      /Invalid policy: .*both \\"domain\\" and \\"include\\"/,
    );
    assert.deepEqual(await sprite.getNetworkPolicy(), policy);
    // Seen from inside, read-only.
    const cat = await sprite.execFile('cat', ['/.sprite/policy/network.json']);
    assert.deepEqual(JSON.parse(cat.stdout), policy);
  } finally {
    await client.deleteSprite(sprite.name);
  }
});

test('privileges and resources policies: stored as sent, reset by delete', async () => {
  const sprite = await client.createSprite(unique());
  try {
    await sprite.updatePrivilegesPolicy({ profile: 'minimal', devices: ['/dev/fuse'], noNewPrivileges: true });
    assert.deepEqual(await sprite.getPrivilegesPolicy(), {
      profile: 'minimal',
      devices: ['/dev/fuse'],
      noNewPrivileges: true,
    });
    await sprite.deletePrivilegesPolicy();
    assert.equal((await sprite.getPrivilegesPolicy()).profile, '');

    // limitMB in the SDK, limit_mb on the wire (the SDK maps it both ways).
    await sprite.updateResourcesPolicy({ memory: { limitMB: 2048, autoscale: true } });
    assert.deepEqual(await sprite.getResourcesPolicy(), { memory: { limitMB: 2048, autoscale: true } });
    await sprite.deleteResourcesPolicy();
    assert.deepEqual(await sprite.getResourcesPolicy(), { memory: { limitMB: 0, autoscale: false } });
    await assert.rejects(sprite.updatePrivilegesPolicy({ profile: 'root' }), /status 400/);
  } finally {
    await client.deleteSprite(sprite.name);
  }
});

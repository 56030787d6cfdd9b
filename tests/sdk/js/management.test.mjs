// The official JS SDK (@fly/sprites, unchanged, from npm) against the local
// engine: sprite management. tests/sdk/run_js.sh starts the engine and sets
// SPRITES_API_URL and SPRITES_TOKEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });

test('create, get, list, update and delete a sprite', async () => {
  const created = await client.createSprite('sdk-js-1', { labels: ['sdk'] });
  assert.equal(created.name, 'sdk-js-1');

  const got = await client.getSprite('sdk-js-1');
  assert.equal(got.name, 'sdk-js-1');
  assert.equal(got.status, 'cold');

  const page = await client.listSprites({ prefix: 'sdk-js-' });
  assert.deepEqual(page.sprites.map((s) => s.name), ['sdk-js-1']);
  assert.equal(page.hasMore, false);

  const updated = await client.updateSprite('sdk-js-1', { urlSettings: { auth: 'public' } });
  assert.equal(updated.name, 'sdk-js-1');
  assert.equal((await client.getSprite('sdk-js-1')).urlSettings.auth, 'public');

  await client.deleteSprite('sdk-js-1');
  await assert.rejects(client.getSprite('sdk-js-1'));
});

test('listAllSprites pages through more than one page', async () => {
  const names = [];
  for (let i = 0; i < 55; i++) names.push(`sdk-page-${String(i).padStart(2, '0')}`);
  for (const name of names) await client.createSprite(name);
  const all = await client.listAllSprites('sdk-page-');
  assert.deepEqual(all.map((s) => s.name), names);
  for (const name of names) await client.deleteSprite(name);
});

test('a duplicate name and a wrong token are refused', async () => {
  await client.createSprite('sdk-dup');
  await assert.rejects(client.createSprite('sdk-dup'));
  const stranger = new SpritesClient('wrong-token', { baseURL: process.env.SPRITES_API_URL });
  await assert.rejects(stranger.listSprites());
  await client.deleteSprite('sdk-dup');
});

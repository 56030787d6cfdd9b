// The official JS SDK against the local engine: checkpoints (spec §7):
// create with a comment (NDJSON progress), list, get, restore, and what the
// restore brings back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
const unique = () => `sdk-ckpt-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

async function drain(stream) {
  const messages = [];
  for await (const message of stream) messages.push(message);
  return messages;
}

test('checkpoint, change, list, get, restore: the files are back', async () => {
  const name = unique();
  const sprite = await client.createSprite(name);
  try {
    await sprite.execFile('sh', ['-c', 'echo kept > /home/sprite/file && echo cfg > /etc/sdk.conf']);
    const created = await drain(await sprite.createCheckpoint('from the sdk'));
    assert.equal(created.at(-1).type, 'complete');
    const id = created.at(-1).data.match(/Checkpoint (\S+) created/)[1];
    assert.equal(id, 'v0');
    assert.ok(created.every((m) => m.type !== 'error'));

    await sprite.execFile('sh', ['-c', 'echo changed > /home/sprite/file && rm /etc/sdk.conf && touch /home/sprite/new']);

    const list = await sprite.listCheckpoints();
    assert.equal(list.length, 1);
    assert.equal(list[0].id, id);
    assert.equal(list[0].comment, 'from the sdk');
    const one = await sprite.getCheckpoint(id);
    assert.equal(one.id, id);
    await assert.rejects(sprite.getCheckpoint('v99'), /not found/i);

    const restored = await drain(await sprite.restoreCheckpoint(id));
    assert.equal(restored.at(-1).type, 'complete');

    const after = await sprite.execFile('sh', ['-c', 'cat /home/sprite/file /etc/sdk.conf; ls /home/sprite']);
    assert.equal(after.stdout.toString(), 'kept\ncfg\nfile\n');
  } finally {
    await client.deleteSprite(name);
  }
});

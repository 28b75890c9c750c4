// Unit tests of web-demo/shared/sha256.js (the fallback for pages that are not a secure context), against
// node's own SHA-256. Run: node --test Tests/Browser/sha256.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import '../../web-demo/shared/sha256.js';

test('FIPS 180-4 vectors', () => {
  const hex = (b) => Buffer.from(b).toString('hex');
  assert.equal(hex(globalThis.sha256Sync(new TextEncoder().encode('abc'))),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hex(globalThis.sha256Sync(new Uint8Array(0))),
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(globalThis.sha256Sync(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

test('every length around the block boundaries, and a chunk-sized buffer, match node', () => {
  for (const n of [1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 60000]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    assert.equal(Buffer.from(globalThis.sha256Sync(b)).toString('hex'), createHash('sha256').update(b).digest('hex'), `length ${n}`);
  }
});

test('base64 as the playlist writes it', async () => {
  const digest = await globalThis.sha256(new TextEncoder().encode('abc'));
  assert.equal(globalThis.bytesToBase64(digest), createHash('sha256').update('abc').digest('base64'));
});

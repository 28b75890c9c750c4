// Unit tests of the glass clock codec in web-demo/shared/glass-clock.js, without a browser.
// Run: node --test Tests/Browser/glass-clock-codec.test.mjs
// The vectors were computed independently with tools/glass-clock/probe.py's crc16, which is
// checked against the CRC-16/CCITT-FALSE check value (0x29B1 for "123456789").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const src = readFileSync(fileURLToPath(new URL('../../web-demo/shared/glass-clock.js', import.meta.url)), 'utf8');
const sandbox = { Date, Math };
vm.runInNewContext(src, sandbox);
const GC = sandbox.GlassClock;

const vectors = [
  // ms, crc, the 64-bit word (ms << 16 | crc)
  [0, 0x0e10, 0x0e10n],
  [1577836800000, 0x5024, 0x16f5e66e8005024n],
  [1700000000000, 0x2b97, 0x18bcfe568002b97n],
  [1795326340812, 0xc0f8, 0x1a201c9eeccc0f8n],
  [2 ** 48 - 1, 0x99cf, 0xffffffffffff99cfn],
];

test('crc16 matches the reference vectors', () => {
  for (const [ms, crc] of vectors) assert.equal(GC.crc16(ms), crc, `ms=${ms}`);
});

test('encodeBits puts bit 63-k of the word in cell k', () => {
  for (const [ms, , word] of vectors) {
    const bits = GC.encodeBits(ms);
    assert.equal(bits.length, 64);
    const got = bits.reduce((acc, b) => (acc << 1n) | BigInt(b), 0n);
    assert.equal(got, word, `ms=${ms}`);
  }
});

test('decodeBits round-trips plausible times and rejects implausible ones', () => {
  const r = GC.decodeBits(GC.encodeBits(1795326340812));
  assert.deepEqual([r.ok, r.ms, r.reason], [true, 1795326340812, null]);
  // CRC-valid but outside [2020, 2100): all-black-ish and all-white-ish words.
  assert.equal(GC.decodeBits(GC.encodeBits(0)).reason, 'range');
  assert.equal(GC.decodeBits(GC.encodeBits(2 ** 48 - 1)).reason, 'range');
  // Uniform frames (no pattern at all) fail the CRC.
  assert.equal(GC.decodeBits(new Array(64).fill(0)).reason, 'checksum');
  assert.equal(GC.decodeBits(new Array(64).fill(1)).reason, 'checksum');
});

test('every 1-, 2- and 3-cell error and every burst up to 16 cells is caught', () => {
  for (const ms of [1577836800000, 1795326340812, 4102444799999]) {
    const good = GC.encodeBits(ms);
    const flip = (ks) => { const b = good.slice(); for (const k of ks) b[k] ^= 1; return GC.decodeBits(b); };
    for (let a = 0; a < 64; a++) {
      assert.equal(flip([a]).ok, false);
      for (let b = a + 1; b < 64; b++) {
        assert.equal(flip([a, b]).ok, false, `cells ${a},${b}`);
        // 3-cell errors for one time only: 41,664 patterns each, and CRC-16 catches every odd-weight error anyway.
        if (ms === 1795326340812) for (let c = b + 1; c < 64; c++) assert.equal(flip([a, b, c]).ok, false, `cells ${a},${b},${c}`);
      }
    }
    // Bursts: first and last cell flipped, anything in between (1.6 M patterns: one time only).
    if (ms === 1795326340812) for (let start = 0; start < 64; start++) {
      for (let len = 2; len <= 16 && start + len <= 64; len++) {
        for (let mid = 0; mid < 2 ** (len - 2); mid++) {
          const ks = [start, start + len - 1];
          for (let i = 0; i < len - 2; i++) if ((mid >> i) & 1) ks.push(start + 1 + i);
          assert.equal(flip(ks).ok, false, `burst at ${start} len ${len}`);
        }
      }
    }
  }
});

test('decodeLumas thresholds at 128 and reports the weakest cell', () => {
  const bits = GC.encodeBits(1700000000000);
  const lumas = bits.map((b) => (b ? 235 : 16));
  lumas[5] = bits[5] ? 150 : 100;
  const r = GC.decodeLumas(lumas);
  assert.equal(r.ok, true);
  assert.equal(r.ms, 1700000000000);
  assert.equal(r.minMargin, bits[5] ? 22 : 28);
});

test('percentile interpolates linearly', () => {
  assert.equal(GC.percentile([], 0.5), null);
  assert.equal(GC.percentile([7], 0.95), 7);
  assert.equal(GC.percentile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(GC.percentile([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.95), 95);
});

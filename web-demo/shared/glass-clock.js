// Glass clock reader: decodes the wall-clock strip that tools/glass-clock/publish.sh draws
// into every frame and measures glass-to-glass delay in the browser.
//
// Classic script (no module, no build step). Defines window.GlassClock:
//
//   const clock = GlassClock.attach(videoElement, { windowSeconds: 5, onSample(s) {} });
//   clock.stats()      -> plain JSON-friendly object (see README in web-demo/glass-clock/)
//   clock.samples(n)   -> the last n samples (for charts)
//   clock.reset(), clock.stop()
//
// Encoding (tools/glass-clock/README.md): a strip at the top of the frame, 2 rows x 32
// square cells of side videoWidth/32. Cell k (row-major, k = row*32 + col) carries bit
// 63-k of V = (ms << 16) | crc, white = 1. ms is the capture wall clock in milliseconds
// since the Unix epoch (48 bits); crc is CRC-16/CCITT-FALSE over ms as 6 big-endian bytes.
(function (global) {
  'use strict';

  const COLS = 32;
  const ROWS = 2;
  const CELLS = COLS * ROWS;
  const DATA_BITS = 48;
  // Canvas pixels per cell. Small on purpose: getImageData cost scales with it, and the
  // centre average only needs a few pixels well inside the cell.
  const PX = 8;
  // A decoded time outside [2020, 2100) is treated as garbage even if the CRC matches
  // (1 in 65536 random patterns would pass the CRC alone).
  const MIN_VALID_MS = Date.UTC(2020, 0, 1);
  const MAX_VALID_MS = Date.UTC(2100, 0, 1);
  // Exact percentiles over this many delays; beyond it a uniform reservoir keeps memory
  // bounded (2 hours at 30 fps).
  const OVERALL_EXACT_LIMIT = 216000;

  /** CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout) of ms as 6 big-endian bytes. */
  function crc16(ms) {
    const hi = Math.floor(ms / 4294967296); // top 16 bits
    const lo = ms - hi * 4294967296;         // low 32 bits, exact in a double
    const bytes = [(hi >>> 8) & 255, hi & 255, (lo >>> 24) & 255, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255];
    let crc = 0xffff;
    for (const b of bytes) {
      crc ^= b << 8;
      for (let i = 0; i < 8; i++) {
        crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
      }
    }
    return crc;
  }

  /** The 64 cell values (0/1) for a time, in cell order. For tests and synthetic frames. */
  function encodeBits(ms) {
    const crc = crc16(ms);
    const bits = new Array(CELLS);
    for (let k = 0; k < CELLS; k++) {
      bits[k] = k < DATA_BITS
        ? Math.floor(ms / 2 ** (DATA_BITS - 1 - k)) % 2
        : (crc >>> (CELLS - 1 - k)) & 1;
    }
    return bits;
  }

  /** Decodes 64 cell values (0/1). Returns { ok, ms, crc, reason }. */
  function decodeBits(bits) {
    let ms = 0;
    for (let k = 0; k < DATA_BITS; k++) ms = ms * 2 + bits[k];
    let crc = 0;
    for (let k = DATA_BITS; k < CELLS; k++) crc = (crc << 1) | bits[k];
    if (crc16(ms) !== crc) return { ok: false, ms, crc, reason: 'checksum' };
    if (ms < MIN_VALID_MS || ms >= MAX_VALID_MS) return { ok: false, ms, crc, reason: 'range' };
    return { ok: true, ms, crc, reason: null };
  }

  /** Decodes 64 cell lumas (0..255), thresholding at 128. Adds minMargin (distance of the least clear cell from the threshold). */
  function decodeLumas(lumas) {
    const bits = new Array(CELLS);
    let minMargin = 255;
    for (let k = 0; k < CELLS; k++) {
      bits[k] = lumas[k] >= 128 ? 1 : 0;
      minMargin = Math.min(minMargin, Math.abs(lumas[k] - 128));
    }
    const r = decodeBits(bits);
    r.minMargin = Math.round(minMargin);
    return r;
  }

  /** Linear-interpolated percentile (p in 0..1) of an ascending array; null when empty. */
  function percentile(sorted, p) {
    const n = sorted.length;
    if (n === 0) return null;
    const x = (n - 1) * p;
    const i = Math.floor(x);
    const f = x - i;
    return i + 1 < n ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[i];
  }

  /** First index in sorted[0..n) whose value is >= v. */
  function lowerBound(sorted, n, v) {
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function round1(v) { return v == null || !isFinite(v) ? null : Math.round(v * 10) / 10; }

  function attach(video, options) {
    if (!video || typeof video.requestVideoFrameCallback !== 'function') {
      throw new Error('GlassClock: needs a <video> element with requestVideoFrameCallback');
    }
    const opts = Object.assign({ windowSeconds: 5, keepSeconds: 120, onSample: null }, options || {});
    const canvas = document.createElement('canvas');
    canvas.width = COLS * PX;
    canvas.height = ROWS * PX;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    const lumas = new Float64Array(CELLS);

    let handle = null;
    let stopped = false;
    let st;

    function resetState() {
      st = {
        startedAt: Date.now(),
        seq: 0,
        framesSeen: 0,        // rVFC callbacks
        framesDecoded: 0,     // CRC and range OK
        framesCorrupt: 0,     // CRC mismatch or implausible time
        corruptByReason: { checksum: 0, range: 0 },
        framesSkipped: 0,     // callbacks with no usable picture (videoWidth 0, strip taller than frame)
        framesMissed: 0,      // presented frames for which no callback ran (metadata.presentedFrames gaps)
        repeats: 0,           // decoded frame with the same time as the previous decoded one
        backwards: 0,         // decoded time earlier than the previous decoded one
        weakFrames: 0,        // decoded, but some cell within 48 of the threshold
        lastPresented: null,
        lastDecodedMs: null,
        last: null,
        recent: [],           // samples of the last keepSeconds (chart + window stats)
        overall: new Float64Array(1024), // sorted delays, exact up to OVERALL_EXACT_LIMIT, then a reservoir
        overallLen: 0,
        overallCount: 0,
        overallSum: 0,
        overallMin: Infinity,
        overallMax: -Infinity,
        error: null,
        videoWidth: 0,
        videoHeight: 0,
      };
    }

    // Overall delays are kept sorted (binary search + copyWithin, O(n) memmove per frame,
    // about 0.1 ms at the cap) so stats() stays cheap however often a page polls it.
    function sortedInsert(v) {
      if (st.overallLen === st.overall.length) {
        const grown = new Float64Array(Math.min(OVERALL_EXACT_LIMIT, st.overall.length * 2));
        grown.set(st.overall);
        st.overall = grown;
      }
      const i = lowerBound(st.overall, st.overallLen, v);
      st.overall.copyWithin(i + 1, i, st.overallLen);
      st.overall[i] = v;
      st.overallLen++;
    }

    function addOverall(delay) {
      st.overallCount++;
      st.overallSum += delay;
      st.overallMin = Math.min(st.overallMin, delay);
      st.overallMax = Math.max(st.overallMax, delay);
      if (st.overallLen < OVERALL_EXACT_LIMIT) {
        sortedInsert(delay);
      } else if (Math.random() * st.overallCount < OVERALL_EXACT_LIMIT) {
        // Reservoir sampling: replace a random kept value.
        const j = Math.floor(Math.random() * st.overallLen);
        st.overall.copyWithin(j, j + 1, st.overallLen);
        st.overallLen--;
        sortedInsert(delay);
      }
    }

    function readLumas(vw, vh) {
      const cell = vw / COLS;
      ctx.drawImage(video, 0, 0, vw, cell * ROWS, 0, 0, canvas.width, canvas.height);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const lo = PX / 4, hi = PX - PX / 4; // centre half of the cell in each direction
      for (let r = 0; r < ROWS; r++) {
        for (let c = 0; c < COLS; c++) {
          let sum = 0, n = 0;
          for (let y = r * PX + lo; y < r * PX + hi; y++) {
            for (let x = c * PX + lo; x < c * PX + hi; x++) {
              const i = (y * canvas.width + x) * 4;
              sum += 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
              n++;
            }
          }
          lumas[r * COLS + c] = sum / n;
        }
      }
    }

    function onFrame(now, md) {
      if (stopped) return;
      handle = video.requestVideoFrameCallback(onFrame);
      // Wall clock of presentation: the current wall clock shifted by how far ahead the
      // frame is shown. Not timeOrigin + expectedDisplayTime, which drifts from Date.now()
      // on long runs (monotonic clock vs NTP-disciplined wall clock).
      const perfNow = performance.now();
      const wallNow = Date.now();
      const expected = md && typeof md.expectedDisplayTime === 'number' ? md.expectedDisplayTime : now;
      const displayMs = wallNow + (expected - perfNow);

      st.framesSeen++;
      if (md && typeof md.presentedFrames === 'number') {
        if (st.lastPresented !== null && md.presentedFrames > st.lastPresented + 1) {
          st.framesMissed += md.presentedFrames - st.lastPresented - 1;
        }
        st.lastPresented = md.presentedFrames;
      }

      const vw = video.videoWidth, vh = video.videoHeight;
      st.videoWidth = vw;
      st.videoHeight = vh;
      const sample = {
        seq: ++st.seq, displayMs, ok: false, reason: null, encodedMs: null, delayMs: null,
        minMargin: null, mediaTime: md ? md.mediaTime : null,
      };
      if (!vw || !vh || (vw / COLS) * ROWS > vh) {
        st.framesSkipped++;
        sample.reason = 'nopicture';
      } else {
        try {
          readLumas(vw, vh);
        } catch (e) {
          // A cross-origin video without CORS taints the canvas: nothing can be read, ever.
          st.error = 'cannot read video pixels: ' + e.name + ': ' + e.message;
          stopped = true;
          if (handle !== null) video.cancelVideoFrameCallback(handle);
          return;
        }
        const r = decodeLumas(lumas);
        sample.minMargin = r.minMargin;
        if (r.ok) {
          sample.ok = true;
          sample.encodedMs = r.ms;
          sample.delayMs = displayMs - r.ms;
          st.framesDecoded++;
          if (r.minMargin < 48) st.weakFrames++;
          if (st.lastDecodedMs !== null) {
            if (r.ms === st.lastDecodedMs) st.repeats++;
            else if (r.ms < st.lastDecodedMs) st.backwards++;
          }
          st.lastDecodedMs = r.ms;
          addOverall(sample.delayMs);
        } else {
          sample.reason = r.reason;
          // What the cells said anyway: an all-black frame reads 0/0, one the publisher never draws.
          sample.rawMs = r.ms;
          sample.rawCrc = r.crc;
          st.framesCorrupt++;
          st.corruptByReason[r.reason]++;
        }
      }
      st.last = sample;
      st.recent.push(sample);
      const keepFrom = displayMs - opts.keepSeconds * 1000;
      if (st.recent.length > 64 && st.recent[0].displayMs < keepFrom) {
        let i = 0;
        while (i < st.recent.length && st.recent[i].displayMs < keepFrom) i++;
        st.recent.splice(0, i);
      }
      if (opts.onSample) opts.onSample(sample);
    }

    function windowStats(nowMs) {
      const from = nowMs - opts.windowSeconds * 1000;
      const win = [];
      for (let i = st.recent.length - 1; i >= 0 && st.recent[i].displayMs >= from; i--) win.push(st.recent[i]);
      win.reverse();
      const delays = [];
      const enc = [];
      let corrupt = 0;
      for (const s of win) {
        if (s.ok) { delays.push(s.delayMs); enc.push(s.encodedMs); } else if (s.reason !== 'nopicture') corrupt++;
      }
      delays.sort((a, b) => a - b);
      const span = win.length >= 2 ? win[win.length - 1].displayMs - win[0].displayMs : 0;
      const encSpan = enc.length >= 2 ? enc[enc.length - 1] - enc[0] : 0;
      return {
        seconds: opts.windowSeconds,
        frames: win.length,
        decoded: delays.length,
        corrupt,
        medianMs: round1(percentile(delays, 0.5)),
        p95Ms: round1(percentile(delays, 0.95)),
        minMs: round1(delays.length ? delays[0] : null),
        maxMs: round1(delays.length ? delays[delays.length - 1] : null),
        // Presentation rate: callbacks per second between the first and last frame in the window.
        fps: span > 0 ? round1(((win.length - 1) * 1000) / span) : null,
        // Capture rate: decoded frames per second of encoded (publisher) time.
        sourceFps: encSpan > 0 ? round1(((enc.length - 1) * 1000) / encSpan) : null,
      };
    }

    function stats() {
      const nowMs = Date.now();
      const w = windowStats(nowMs);
      const sorted = st.overall.subarray(0, st.overallLen);
      const last = st.last;
      return {
        version: 1,
        running: !stopped,
        error: st.error,
        now: nowMs,
        startedAt: st.startedAt,
        videoWidth: st.videoWidth,
        videoHeight: st.videoHeight,
        framesSeen: st.framesSeen,
        framesDecoded: st.framesDecoded,
        framesCorrupt: st.framesCorrupt,
        corruptByReason: Object.assign({}, st.corruptByReason),
        framesSkipped: st.framesSkipped,
        framesMissed: st.framesMissed,
        repeats: st.repeats,
        backwards: st.backwards,
        weakFrames: st.weakFrames,
        lastDelayMs: last && last.ok ? round1(last.delayMs) : null,
        lastEncodedMs: st.lastDecodedMs,
        lastFrameAgeMs: last ? round1(nowMs - last.displayMs) : null,
        fps: w.fps,
        window: w,
        overall: {
          decoded: st.overallCount,
          exact: st.overallCount <= OVERALL_EXACT_LIMIT,
          medianMs: round1(percentile(sorted, 0.5)),
          p95Ms: round1(percentile(sorted, 0.95)),
          minMs: round1(st.overallCount ? st.overallMin : null),
          maxMs: round1(st.overallCount ? st.overallMax : null),
          meanMs: round1(st.overallCount ? st.overallSum / st.overallCount : null),
        },
      };
    }

    resetState();
    handle = video.requestVideoFrameCallback(onFrame);

    return {
      stats,
      /** The last n samples (all if n is absent), oldest first. Each: { seq, displayMs, ok, reason, encodedMs, delayMs, minMargin, mediaTime }. */
      samples(n) { return n ? st.recent.slice(-n) : st.recent.slice(); },
      reset() { resetState(); },
      stop() {
        stopped = true;
        if (handle !== null) video.cancelVideoFrameCallback(handle);
      },
      set onSample(fn) { opts.onSample = fn; },
      get onSample() { return opts.onSample; },
    };
  }

  global.GlassClock = {
    COLS, ROWS, CELLS, MIN_VALID_MS, MAX_VALID_MS,
    crc16, encodeBits, decodeBits, decodeLumas, percentile, attach,
  };
})(typeof window !== 'undefined' ? window : globalThis);

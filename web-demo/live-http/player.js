// LiveSwarm low-latency HTTP player: Media Source Extensions fed with the CMAF parts of
// /APP/STREAM/index.m3u8, chasing a target delay behind the live edge.
//
// Classic script, no build step, no third-party player. Defines window.LivePlayer:
//
//   const p = new LivePlayer(videoElement, { stream: 'live/cam', targetDelay: 2 });   // also viewer: 'ID' (see DEFAULTS)
//   p.start();            // MSE with CMAF parts
//   p.startNative(url);   // the browser's own HLS, for comparison
//   p.stats()             // delay, stalls, first frame, bitrate ... (JSON-friendly)
//   p.pause(); p.resume() // stops fetching altogether (playlists too); resumes at the target delay
//   p.stop()
//
// How it stays near the live edge:
// - It starts at the newest independent part (one that begins with an IDR) that is at least
//   targetDelay old, and fetches parts in order. A part that does not exist yet is held by the
//   server until it does (the playlist's preload hint), so each part arrives as soon as it is made.
// - Delay is measured as wall clock now minus the wall-clock time the origin received the frame on
//   screen: EXT-X-PROGRAM-DATE-TIME of its segment plus the offset of the part within it.
// - Behind the target: play faster, up to maxRate, in proportion to the excess. Far behind (after a
//   stall, a paused video or a background tab): jump to the newest independent part that keeps at
//   least targetDelay of delay. Fetching also skips ahead if it falls that far behind.
// - With a P2P loader whose origin announces each new part (P2PEngine.nextPart), the next part comes from the
//   announcement and the playlist is not reloaded for it; when announcements stop, blocking reloads take over.
// - pause() aborts every request and stops the video; resume() reloads the playlist once and goes on from where it
//   was, or, if that is gone from the playlist or too far behind, from where a new viewer would start.
(function (global) {
  'use strict';

  const DEFAULTS = {
    stream: 'live/livestream',
    targetDelay: 2.0,     // seconds behind the origin's clock
    maxRate: 1.25,        // fastest catch-up speed
    jumpBehind: 3.0,      // seconds beyond the target after which the player jumps instead of speeding up
    keepBehind: 30,       // seconds of played media kept in the SourceBuffer
    origin: '',           // '' = same origin as the page
    loader: null,         // gets parts instead of fetch (a P2PEngine): loader.get({id, uri, hash}, signal) -> {status, data};
                          // loader.nextPart(cursor, signal), if it has one: the part at cursor, announced, or null
    viewer: null,         // sent as ?viewer= with every request, so the origin counts this viewer apart (random if null)
  };

  // --- playlist parsing (only what this player needs) ---------------------------------------------

  function attrs(s) {
    const out = {};
    const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
    let m;
    while ((m = re.exec(s))) out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
    return out;
  }

  /** Parses a media playlist into segments with their parts, maps and program date-times. */
  function parsePlaylist(text) {
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines[0] !== '#EXTM3U') throw new Error('not a playlist');
    const pl = { mediaSequence: 0, partTarget: 0, segments: [], ended: false, hint: null };
    let seq = null;
    let cur = null;
    let map = null;
    const open = () => {
      if (!cur) cur = { sequence: seq, parts: [], map, pdt: null, duration: null, uri: null, discontinuity: false };
      return cur;
    };
    for (const l of lines) {
      if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) { pl.mediaSequence = parseInt(l.slice(22), 10); seq = pl.mediaSequence; }
      else if (l.startsWith('#EXT-X-PART-INF:')) pl.partTarget = parseFloat(attrs(l.slice(16))['PART-TARGET']);
      else if (l.startsWith('#EXT-X-MAP:')) { map = attrs(l.slice(11)).URI; if (cur) cur.map = map; }
      else if (l === '#EXT-X-DISCONTINUITY') open().discontinuity = true;
      else if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) open().pdt = Date.parse(l.slice(25));
      else if (l.startsWith('#EXT-X-PART:')) {
        const a = attrs(l.slice(12));
        const c = open();
        // X-SHA256: LiveSwarm's hash of the part (docs/P2P.md), for a P2P loader to check copies from peers.
        c.parts.push({ uri: a.URI, duration: parseFloat(a.DURATION), independent: a.INDEPENDENT === 'YES', hash: a['X-SHA256'] || null });
      } else if (l.startsWith('#EXTINF:')) open().duration = parseFloat(l.slice(8));
      else if (l.startsWith('#EXT-X-PRELOAD-HINT:')) pl.hint = attrs(l.slice(20)).URI;
      else if (l === '#EXT-X-ENDLIST') pl.ended = true;
      else if (!l.startsWith('#')) { open().uri = l; pl.segments.push(cur); cur = null; seq += 1; }
    }
    if (cur) pl.segments.push(cur); // the segment in progress: parts only
    for (const s of pl.segments) { if (!s.map) s.map = map; }
    return pl;
  }

  // --- fMP4 inspection --------------------------------------------------------------------------------

  function findBox(bytes, type, from = 0) {
    const t = [...type].map((c) => c.charCodeAt(0));
    for (let i = from; i + 8 <= bytes.length; i++) {
      if (bytes[i + 4] === t[0] && bytes[i + 5] === t[1] && bytes[i + 6] === t[2] && bytes[i + 7] === t[3]) return i;
    }
    return -1;
  }

  /** The MSE type of an init section: avc1.PPCCLL from avcC, mp4a.40.N from the esds. */
  function mimeOf(init) {
    const codecs = [];
    const avcc = findBox(init, 'avcC');
    if (avcc >= 0) {
      const hex = (b) => b.toString(16).padStart(2, '0');
      codecs.push(`avc1.${hex(init[avcc + 9])}${hex(init[avcc + 10])}${hex(init[avcc + 11])}`);
    }
    const esds = findBox(init, 'esds');
    if (esds >= 0) {
      // DecoderSpecificInfo (tag 5): the first 5 bits of the AudioSpecificConfig are the object type.
      let aot = 2;
      for (let i = esds + 12; i < Math.min(init.length - 2, esds + 80); i++) {
        if (init[i] === 0x05) {
          let j = i + 1;
          while (init[j] & 0x80) j++;
          aot = init[j + 1] >> 3;
          break;
        }
      }
      codecs.push(`mp4a.40.${aot}`);
    }
    return `video/mp4; codecs="${codecs.join(',')}"`;
  }

  /** Timescale of the first track (mdhd) of an init section. */
  function videoTimescale(init) {
    const mdhd = findBox(init, 'mdhd');
    if (mdhd < 0) return 90000;
    const v = new DataView(init.buffer, init.byteOffset);
    const version = init[mdhd + 8];
    return v.getUint32(mdhd + (version === 1 ? 28 : 20));
  }

  /** baseMediaDecodeTime of the first traf of a fragment (the video track), in its timescale. */
  function fragmentTime(frag) {
    const tfdt = findBox(frag, 'tfdt');
    if (tfdt < 0) return null;
    const v = new DataView(frag.buffer, frag.byteOffset);
    return frag[tfdt + 8] === 1 ? v.getUint32(tfdt + 12) * 4294967296 + v.getUint32(tfdt + 16) : v.getUint32(tfdt + 12);
  }

  // --- the player --------------------------------------------------------------------------------------

  class LivePlayer {
    constructor(video, options = {}) {
      this.video = video;
      this.o = Object.assign({}, DEFAULTS, options);
      if (!this.o.viewer) this.o.viewer = Math.random().toString(16).slice(2, 14);
      this.base = `${this.o.origin}/${this.o.stream}/`;
      this.reset();
    }

    /** A file of the stream, with the query `query` (may start with '?') and this viewer's id. */
    url(file, query = '') {
      const q = query.replace(/^\?/, '');
      return `${this.base}${file}?${q ? q + '&' : ''}viewer=${encodeURIComponent(this.o.viewer)}`;
    }

    reset() {
      this.running = false;
      this.mode = 'idle';
      this.startedAt = performance.now();
      this.firstFrameMs = null;
      this.stalls = 0;
      this.stalledMs = 0;
      this.stallStart = null;
      this.jumps = 0;
      this.skips = 0;
      this.partsFetched = 0;
      this.bytes = [];          // [performance.now(), bytes] of recent fetches
      this.anchors = [];        // [mediaTime, wallMs, independent] per appended part
      this.currentInit = null;
      this.timescale = 90000;
      this.errors = [];
      this.rate = 1;
      this.history = [];        // [now, delay, kbps] for the chart
      this.originMediaBytes = 0; // what this page fetched from the origin: init sections and parts
      this.originPlaylistBytes = 0;
      this.playlistLoads = 0;
      this.announcedParts = 0;   // parts found from the loader's announcements instead of a playlist reload
      this.paused = false;
      this.pauses = 0;
      this.lastResume = null;    // {pausedMs, from, to, jumped}
      this.pos = null;           // where fetching is: {cursor, pl, clock}
      this.started = false;
      this.seekOnAppend = false;
    }

    log(msg) { this.errors.push(`${new Date().toISOString()} ${msg}`); if (this.errors.length > 20) this.errors.shift(); }

    async fetchBytes(url, signal) {
      const r = await fetch(url, { signal, cache: 'no-store' });
      if (!r.ok) return { status: r.status, data: null };
      const data = new Uint8Array(await r.arrayBuffer());
      this.bytes.push([performance.now(), data.length]);
      this.originMediaBytes += data.length;
      return { status: r.status, data };
    }

    /** A part, from the loader (P2P) when there is one, else from the origin. */
    async loadPart(cursor, info) {
      const uri = `part-${cursor.sequence}.${cursor.index}.m4s`;
      if (!this.o.loader) return this.fetchBytes(this.url(uri), this.abort.signal);
      const r = await this.o.loader.get({ id: `${cursor.sequence}.${cursor.index}`, uri, hash: info ? info.hash : null }, this.abort.signal);
      if (r.data) this.bytes.push([performance.now(), r.data.length]);
      return r;
    }

    async playlist(query = '') {
      for (;;) {
        const r = await fetch(this.url('index.m3u8', query), { signal: this.abort.signal, cache: 'no-store' });
        if (r.ok) {
          const text = await r.text();
          this.originPlaylistBytes += text.length;
          this.playlistLoads += 1;
          return parsePlaylist(text);
        }
        if (r.status === 400 && query) { query = ''; continue; }
        this.log(`playlist: HTTP ${r.status}`);
        await new Promise((res) => setTimeout(res, 1000)); // not live yet: poll
      }
    }

    /** The wall-clock time (ms) the origin received each part's first frame, from the playlist. */
    static partClock(pl) {
      const out = [];
      for (const s of pl.segments) {
        let t = s.pdt;
        s.parts.forEach((p, i) => {
          out.push({ sequence: s.sequence, index: i, wall: t, independent: p.independent, map: s.map, uri: p.uri, hash: p.hash });
          if (t != null) t += p.duration * 1000;
        });
      }
      return out;
    }

    /** The newest independent part that is at least `behind` seconds old (else the oldest independent one). */
    static pickStart(pl, behind) {
      const parts = LivePlayer.partClock(pl).filter((p) => p.independent);
      if (!parts.length) return null;
      const cutoff = Date.now() - behind * 1000;
      const old = parts.filter((p) => p.wall != null && p.wall <= cutoff);
      return old.length ? old[old.length - 1] : parts[0];
    }

    start() {
      this.stop();
      this.reset();
      this.running = true;
      this.mode = 'mse';
      this.abort = new AbortController();
      this.ms = new MediaSource();
      this.video.src = URL.createObjectURL(this.ms);
      this.watch();
      this.ms.addEventListener('sourceopen', () => this.run().catch((e) => this.failed(e)), { once: true });
    }

    failed(e) {
      if (this.paused && e.name === 'AbortError') return;   // pause() aborted the request
      if (this.running) { this.log(`stopped: ${e.message}`); this.running = false; }
    }

    /** Stops fetching (every request in flight is aborted, playlists included) and the video. */
    pause() {
      if (!this.running || this.mode !== 'mse' || this.paused) return;
      this.paused = true;
      this.pauses += 1;
      this.pausedAt = performance.now();
      this.abort.abort();
      this.video.pause();
    }

    /** Goes on after pause(): from where fetching was, unless that has left the playlist or is far behind live (then
     *  from where a new viewer would start), and plays. */
    resume() {
      if (!this.paused) return;
      this.paused = false;
      this.abort = new AbortController();
      const pausedMs = Math.round(performance.now() - this.pausedAt);
      if (!this.pos) this.video.play().catch(() => {});
      (this.pos ? this.follow(pausedMs) : this.run()).catch((e) => this.failed(e));
    }

    /** The browser's own HLS playback of `url` (no MSE), for comparison: delay from the same clock. Chromium's
     *  player refuses a live playlist of a single segment (a stream that has just started), so a failed load
     *  is retried every 2 s, ten times. */
    startNative(url) {
      this.stop();
      this.reset();
      this.running = true;
      this.mode = 'native';
      this.abort = new AbortController();
      let retries = 10;
      const load = () => {
        this.video.src = url;
        this.video.play().catch((e) => this.log(`play: ${e.message}`));
      };
      this.onNativeError = () => {
        const e = this.video.error;
        this.log(`native player: ${e ? e.message || e.code : 'error'}`);
        if (this.running && this.mode === 'native' && retries-- > 0) setTimeout(() => { if (this.running) load(); }, 2000);
      };
      this.video.addEventListener('error', this.onNativeError);
      this.watch();
      load();
    }

    stop() {
      this.running = false;
      if (this.onNativeError) { this.video.removeEventListener('error', this.onNativeError); this.onNativeError = null; }
      if (this.onWaiting) this.video.removeEventListener('waiting', this.onWaiting);
      if (this.onPlaying) this.video.removeEventListener('playing', this.onPlaying);
      if (this.abort) this.abort.abort();
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      if (this.video.src) { this.video.removeAttribute('src'); this.video.load(); }
    }

    watch() {
      const v = this.video;
      const t0 = this.startedAt;
      const onFrame = () => { if (this.firstFrameMs == null) this.firstFrameMs = performance.now() - t0; };
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame); else v.addEventListener('playing', onFrame, { once: true });
      this.onWaiting = () => {
        if (this.firstFrameMs != null && this.stallStart == null && !v.paused) { this.stalls += 1; this.stallStart = performance.now(); }
      };
      this.onPlaying = () => {
        if (this.stallStart != null) { this.stalledMs += performance.now() - this.stallStart; this.stallStart = null; }
      };
      v.addEventListener('waiting', this.onWaiting);
      v.addEventListener('playing', this.onPlaying);
      this.timer = setInterval(() => this.control(), 250);
    }

    async appendBuffer(data) {
      const sb = this.sb;
      if (sb.updating) await new Promise((r) => sb.addEventListener('updateend', r, { once: true }));
      await new Promise((resolve, reject) => {
        const done = () => { sb.removeEventListener('error', fail); resolve(); };
        const fail = () => { sb.removeEventListener('updateend', done); reject(new Error('SourceBuffer error')); };
        sb.addEventListener('updateend', done, { once: true });
        sb.addEventListener('error', fail, { once: true });
        try { sb.appendBuffer(data); } catch (e) {
          sb.removeEventListener('updateend', done); sb.removeEventListener('error', fail);
          if (e.name === 'QuotaExceededError') { this.trim(true); resolve(); } else reject(e);
        }
      });
    }

    async useInit(uri) {
      if (uri === this.currentInit) return;
      const r = await this.fetchBytes(this.url(uri), this.abort.signal);
      if (!r.data) throw new Error(`init ${uri}: HTTP ${r.status}`);
      const mime = mimeOf(r.data);
      if (!this.sb) {
        if (!MediaSource.isTypeSupported(mime)) throw new Error(`unsupported media type ${mime}`);
        this.sb = this.ms.addSourceBuffer(mime);
        this.mime = mime;
      } else if (mime !== this.mime && this.sb.changeType) {
        this.sb.changeType(mime);
        this.mime = mime;
      }
      this.timescale = videoTimescale(r.data);
      await this.appendBuffer(r.data);
      this.currentInit = uri;
    }

    async run() {
      let pl = await this.playlist();
      let start = LivePlayer.pickStart(pl, this.o.targetDelay);
      while (!start) { pl = await this.playlist(`?_HLS_msn=${pl.mediaSequence + pl.segments.length}`); start = LivePlayer.pickStart(pl, this.o.targetDelay); }
      this.pos = { cursor: { sequence: start.sequence, index: start.index }, pl, clock: LivePlayer.partClock(pl) };
      await this.follow(null);
    }

    /** Fetches and appends parts from this.pos on, until stopped or paused. `resumedAfterMs`: after a pause of that
     *  long, the playlist is reloaded first and fetching goes on from where it was unless that is gone or far behind. */
    async follow(resumedAfterMs) {
      let { cursor, pl, clock } = this.pos;
      const live = () => this.running && !this.paused;
      if (resumedAfterMs != null) {
        pl = await this.playlist();
        if (!live()) return;
        clock = LivePlayer.partClock(pl);
        const skips = this.skips;
        const from = `${cursor.sequence}.${cursor.index}`;
        cursor = this.advance(cursor, pl, clock);
        const jumped = this.skips > skips;
        // Jumped: what is buffered ends long before the new part, which is played from once it is appended.
        if (jumped) this.seekOnAppend = true;
        else this.video.play().catch((e) => this.log(`play: ${e.message}`));
        this.lastResume = { pausedMs: resumedAfterMs, from, to: `${cursor.sequence}.${cursor.index}`, jumped };
      }
      while (live()) {
        this.pos = { cursor, pl, clock };
        const info = clock.find((p) => p.sequence === cursor.sequence && p.index === cursor.index);
        if (info && info.map) await this.useInit(info.map);
        else if (!this.currentInit) await this.useInit(pl.segments[pl.segments.length - 1].map);
        const r = await this.loadPart(cursor, info);
        if (!live()) return;
        if (r.data) {
          this.partsFetched += 1;
          const media = fragmentTime(r.data);
          await this.appendBuffer(r.data);
          if (media != null && info && info.wall != null) {
            this.anchors.push([media / this.timescale, info.wall, info.independent]);
            if (this.anchors.length > 400) this.anchors.shift();
          }
          if (!this.started || this.seekOnAppend) {
            this.started = true;
            this.seekOnAppend = false;
            this.video.currentTime = media != null ? media / this.timescale : this.video.buffered.start(0);
            this.video.play().catch((e) => this.log(`play: ${e.message}`));
          }
          cursor = { sequence: cursor.sequence, index: cursor.index + 1 };
          if (!clock.find((p) => p.sequence === cursor.sequence && p.index === cursor.index)) {
            // Past what the last playlist listed: the loader's announcement of the next part, else a reload of the
            // playlist when the next part exists (blocking reload).
            const next = this.o.loader && this.o.loader.nextPart ? await this.o.loader.nextPart(cursor, this.abort.signal) : null;
            if (!live()) return;
            if (next) {
              this.announcedParts += 1;
              clock.push(next);
              if (clock.length > 600) clock.splice(0, clock.length - 600);
              cursor = { sequence: next.sequence, index: next.index };
            } else {
              pl = await this.playlist(`?_HLS_msn=${cursor.sequence}&_HLS_part=${cursor.index}`);
              clock = LivePlayer.partClock(pl);
              cursor = this.advance(cursor, pl, clock);
            }
          }
          continue;
        }
        if (r.stopped || r.aborted) continue;   // the loader went away (P2P switched off here) or we paused
        if (r.status === 404 || r.status === 503) {
          pl = await this.playlist();
          clock = LivePlayer.partClock(pl);
          cursor = this.advance(cursor, pl, clock);
          continue;
        }
        this.log(`part: HTTP ${r.status}`);
        await new Promise((res) => setTimeout(res, 500));
      }
    }

    /** Where fetching goes next: the next listed part; a segment's first part after its last; or, if the
     *  cursor fell out of the window or far behind, the start a new viewer would pick. */
    advance(cursor, pl, clock) {
      const here = clock.findIndex((p) => p.sequence === cursor.sequence && p.index === cursor.index);
      const newest = clock[clock.length - 1];
      let next = here >= 0 ? clock[here] : null;
      if (!next) {
        const seg = pl.segments.find((s) => s.sequence === cursor.sequence);
        if (seg && seg.duration != null && cursor.index >= seg.parts.length) {
          next = clock.find((p) => p.sequence === cursor.sequence + 1 && p.index === 0) || null;
        }
      }
      const farBehind = next && next.wall != null && newest && newest.wall != null
        && (newest.wall - next.wall) / 1000 > this.o.targetDelay + this.o.jumpBehind;
      if (!next || farBehind) {
        const s = LivePlayer.pickStart(pl, this.o.targetDelay);
        if (s) { this.skips += 1; return { sequence: s.sequence, index: s.index }; }
      }
      return next ? { sequence: next.sequence, index: next.index } : cursor;
    }

    /** Wall-clock time (ms) the origin received the frame at media time `t`. */
    wallAt(t) {
      let a = null;
      for (let i = this.anchors.length - 1; i >= 0; i--) { if (this.anchors[i][0] <= t) { a = this.anchors[i]; break; } }
      if (!a) a = this.anchors[0];
      return a ? a[1] + (t - a[0]) * 1000 : null;
    }

    delay() {
      if (this.mode !== 'mse' || !this.anchors.length || this.firstFrameMs == null) return null;
      const wall = this.wallAt(this.video.currentTime);
      return wall == null ? null : (Date.now() - wall) / 1000;
    }

    bufferAhead() {
      const b = this.video.buffered;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) <= this.video.currentTime + 0.1 && this.video.currentTime <= b.end(i)) return b.end(i) - this.video.currentTime;
      }
      return 0;
    }

    kbps() {
      const now = performance.now();
      this.bytes = this.bytes.filter(([t]) => now - t < 5000);
      return this.bytes.reduce((n, [, b]) => n + b, 0) * 8 / 5 / 1000;
    }

    /** Every 250 ms: catch up by rate or by a jump, and trim what has been played. */
    control() {
      const v = this.video;
      const d = this.delay();
      this.history.push([Date.now(), d, this.kbps()]);
      if (this.history.length > 240) this.history.shift();
      if (this.mode !== 'mse' || d == null || v.paused) return;
      const excess = d - this.o.targetDelay;
      if (excess > this.o.jumpBehind) {
        // Far behind: to the newest independent part that still leaves targetDelay of delay.
        const cutoff = Date.now() - this.o.targetDelay * 1000;
        const candidates = this.anchors.filter(([t, wall, ind]) => ind && wall <= cutoff && t > v.currentTime);
        const to = candidates.length ? candidates[candidates.length - 1] : null;
        if (to) { v.currentTime = to[0]; this.jumps += 1; }
        this.rate = 1;
      } else if (excess > 0.1) {
        this.rate = Math.min(this.o.maxRate, 1 + excess * 0.25);
      } else if (excess < -0.3 && this.bufferAhead() < 0.3) {
        this.rate = 0.95; // too close to the edge with nothing buffered: give the next part time to arrive
      } else {
        this.rate = 1;
      }
      if (Math.abs(v.playbackRate - this.rate) > 0.005) v.playbackRate = this.rate;
      this.trim(false);
    }

    trim(force) {
      const sb = this.sb;
      if (!sb || sb.updating || !this.video.buffered.length) return;
      const start = this.video.buffered.start(0);
      const until = this.video.currentTime - (force ? 2 : this.o.keepBehind);
      if (until - start > (force ? 0 : 10)) { try { sb.remove(start, until); } catch (e) { this.log(`trim: ${e.message}`); } }
    }

    stats() {
      const stalledMs = this.stalledMs + (this.stallStart != null ? performance.now() - this.stallStart : 0);
      const d = this.delay();
      return {
        mode: this.mode,
        running: this.running,
        delay: d == null ? null : Math.round(d * 1000) / 1000,
        targetDelay: this.o.targetDelay,
        playbackRate: this.video.playbackRate,
        pausedByUser: this.paused,
        pauses: this.pauses,
        lastResume: this.lastResume,
        playlistLoads: this.playlistLoads,
        announcedParts: this.announcedParts,
        bufferAhead: Math.round(this.bufferAhead() * 1000) / 1000,
        firstFrameMs: this.firstFrameMs == null ? null : Math.round(this.firstFrameMs),
        stalls: this.stalls,
        stalledMs: Math.round(stalledMs),
        jumps: this.jumps,
        skips: this.skips,
        partsFetched: this.partsFetched,
        originMediaBytes: this.originMediaBytes,
        originPlaylistBytes: this.originPlaylistBytes,
        bitrateKbps: Math.round(this.kbps()),
        paused: this.video.paused,
        errors: this.errors.slice(-5),
      };
    }
  }

  LivePlayer.parsePlaylist = parsePlaylist;
  LivePlayer.mimeOf = mimeOf;
  global.LivePlayer = LivePlayer;
})(window);

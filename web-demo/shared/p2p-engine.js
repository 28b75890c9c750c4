// LiveSwarm P2P engine: viewers of one stream pass its CMAF parts ("chunks") to each other over WebRTC
// DataChannels, so that the origin sends each chunk to a few viewers instead of to all.
//
// Classic script, no build step. Needs shared/sha256.js. Defines window.P2PEngine:
//
//   const engine = new P2PEngine({ stream: 'live/cam', swarm, player });   // swarm: from /api/v1/streams/APP/STREAM/chunks
//   engine.start();
//   const bytes = await engine.get({ id: '12.3', uri: 'part-12.3.m4s', hash: 'BASE64' });  // verified
//   engine.stats();   engine.stop();
//   const next = await engine.nextPart({ sequence: 12, index: 4 }, signal);   // announced by the origin, or null
//
// How a chunk is got (docs/P2P.md has the reasons):
// - Due soon (the player has less than `urgentSeconds` buffered) or no neighbours: from the origin over HTTP.
// - From a neighbour that announced it.
// - Nobody around has it: a seeding lottery (seedDue) lets about one viewer in the swarm fetch each new chunk
//   from the origin at once; the others wait for it to reach them, and take their turn only if it does not.
// - Every chunk, from a peer or from the origin, is checked against the SHA-256 the origin published in the
//   playlist before the player gets it or any peer is told about it. A peer that sends a bad chunk is dropped and
//   the chunk is fetched from the origin.
//
// Wire protocol on a DataChannel (label "liveswarm", ordered, reliable): JSON text messages
//   {t:'hello', have:[ids]}  {t:'have', id}  {t:'req', id}  {t:'none', id}  {t:'data', id, size}  {t:'cancel', id}
//   {t:'soon', id} (fetching it from the origin now: wait for my 'have')
// and after each 'data' header, the chunk's bytes in binary messages of at most `pieceBytes`.
//
// Part announcements: the engine asks the tracker for them (x_liveswarm.parts in its announces), and the origin
// then tells it of each new part (id, size, SHA-256, place) the moment it is made. The player takes the next part
// from them (nextPart) instead of reloading the playlist for each; when they stop, it reloads the playlist again.
(function (global) {
  'use strict';

  const DEFAULTS = {
    tracker: '/tracker',
    iceServers: [],
    iceTransportPolicy: 'all', // 'relay': peers only through TURN relays (the server must hand TURN out for P2P)
    maxNeighbours: 8,
    offersPerAnnounce: 4,
    seedStepMs: 100,         // how long each rank of the seeding lottery waits for a chunk to arrive from peers
    soonMs: 600,             // how long a neighbour's 'soon' (it is fetching the chunk from the origin) holds off seeding
    urgentSeconds: 0.7,      // a chunk due within this much buffered media comes from the origin
    peerTimeoutMs: 1500,     // a peer transfer slower than this is given up
    pieceBytes: 16 * 1024,   // Chromium's and Firefox's common DataChannel message limit is 256 KiB; 16 KiB interoperates everywhere
    highWater: 1024 * 1024,  // bufferedAmount above which an upload waits
    lowWater: 256 * 1024,
    maxUploads: 4,           // uploads at a time, over all neighbours
    uploadKbps: 0,           // upload limit in kbit/s; 0 = none
    keepChunks: 120,         // chunks kept to share (about a minute at 0.5 s parts)
    reannounceMs: 5000,      // announce again this often while short of neighbours
    offerTimeoutMs: 20000,
    origin: '',
    peerId: null,            // 20-character binary string; random when null (a page that restarts its engine keeps one)
    partWaitMs: 1500,        // how long nextPart waits for an announcement before the player reloads the playlist
    partsQuietMs: 2500,      // announcements count as flowing while the last came at most this long ago
    keepParts: 200,          // announced parts remembered
    parts: true,             // ask the tracker for part announcements (false: the player reloads the playlist per part)
  };

  function randomHex(n) {
    const b = new Uint8Array(n);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  }

  function hexToBinary(hex) {
    let s = '';
    for (let i = 0; i < hex.length; i += 2) s += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
    return s;
  }

  function binaryToHex(s) {
    return [...s].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  }

  /** The seeder lottery's ticket: FNV-1a of a string, then MurmurHash3's finaliser, so that ids differing only in
   *  their last characters still get unrelated tickets. */
  function fnv(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    return h >>> 0;
  }

  function waitIceGathering(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === 'complete') { pc.removeEventListener('icegatheringstatechange', done); resolve(); } };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, ms);
    });
  }

  /** One neighbour: its connection, channel, what it has, and the transfers in progress. */
  class Peer {
    constructor(engine, id, pc) {
      this.engine = engine;
      this.id = id;              // binary string (tracker peer_id)
      this.hex = binaryToHex(id);
      this.pc = pc;
      this.dc = null;
      this.open = false;
      this.have = new Set();
      this.incoming = null;      // {id, size, buf, got, started}
      this.request = null;       // our request to it: {id, started}
      this.uploads = [];         // ids it asked us for, in order
      this.uploadingId = null;   // the chunk being uploaded to it, if any
      this.bytesIn = 0;          // every DataChannel message byte received (text as UTF-8, binary)
      this.bytesOut = 0;
      this.chunkBytesIn = 0;     // bytes of verified chunks received
      this.chunkBytesOut = 0;
    }

    attach(dc) {
      this.dc = dc;
      dc.binaryType = 'arraybuffer';
      dc.bufferedAmountLowThreshold = this.engine.o.lowWater;
      dc.onopen = () => { this.open = true; this.engine.onPeerOpen(this); };
      dc.onclose = () => this.engine.dropPeer(this, 'channel closed');
      dc.onerror = () => this.engine.dropPeer(this, 'channel error');
      dc.onmessage = (e) => this.onMessage(e.data);
      if (dc.readyState === 'open') dc.onopen();
    }

    send(msg) {
      if (!this.dc || this.dc.readyState !== 'open') return false;
      if (typeof msg === 'string') { this.dc.send(msg); this.bytesOut += new TextEncoder().encode(msg).length; }
      else { this.dc.send(msg); this.bytesOut += msg.byteLength; }
      return true;
    }

    json(obj) { return this.send(JSON.stringify(obj)); }

    onMessage(data) {
      if (typeof data === 'string') {
        this.bytesIn += new TextEncoder().encode(data).length;
        let m;
        try { m = JSON.parse(data); } catch (e) { this.engine.dropPeer(this, 'garbage message'); return; }
        this.engine.onControl(this, m);
      } else {
        this.bytesIn += data.byteLength;
        this.engine.onPiece(this, new Uint8Array(data));
      }
    }

    close() {
      this.open = false;
      try { if (this.dc) this.dc.close(); } catch (e) { /* closing */ }
      try { this.pc.close(); } catch (e) { /* closing */ }
    }
  }

  class P2PEngine {
    constructor(options) {
      this.o = Object.assign({}, DEFAULTS, options);
      this.player = options.player;
      this.infoHash = hexToBinary(options.swarm.infoHash);
      this.peerId = options.peerId || ('-LS0001-' + randomHex(6));   // 8 + 12 characters, as WebTorrent clients make them
      this.peers = new Map();       // peer id -> Peer (connected or connecting)
      this.offers = new Map();      // offer id -> {pc, dc, created}
      this.chunks = new Map();      // chunk id -> {id, uri, hash, bytes, waiters, http}
      this.order = [];              // chunk ids in the order first seen, for forgetting the oldest
      this.originBytes = 0;         // chunk bytes from the origin
      this.peerBytes = 0;           // verified chunk bytes from peers
      this.uploadedBytes = 0;       // chunk bytes sent to peers
      this.badChunks = 0;
      this.droppedPeers = [];       // [peer hex, reason]
      this.banned = new Set();      // peer ids that sent a bad chunk: never connected to again
      this.httpChunks = 0;
      this.peerChunks = 0;
      this.seeded = 0;
      this.urgent = 0;
      this.uploadsNow = 0;
      this.tokens = 0;
      this.tokensAt = performance.now();
      this.log = [];
      this.swarmPeers = null;
      this.running = false;
      this.closedPeerBytes = { in: 0, out: 0 };
      this.off = false;             // P2P switched off by the operator (the tracker said so)
      this.parts = new Map();       // announced part id -> {sequence, index, wall, independent, map, uri, hash, bytes}
      this.partOrder = [];
      this.partWaiters = [];        // nextPart calls waiting: {sequence, index, resolve}
      this.lastPartAt = null;       // performance.now() of the last announcement
      this.partsAnnounced = 0;
      this.pcFailures = 0;          // RTCPeerConnections the browser refused to create (Chromium: 500 a page, over its life)
    }

    /** A DataChannel-only RTCPeerConnection, or null when the browser refuses one (counted). */
    newConnection() {
      try {
        return new RTCPeerConnection({ iceServers: this.o.iceServers, iceTransportPolicy: this.o.iceTransportPolicy });
      } catch (e) {
        this.pcFailures += 1;
        this.note(`RTCPeerConnection refused: ${e.message}`);
        return null;
      }
    }

    note(msg) { this.log.push(`${new Date().toISOString()} ${msg}`); if (this.log.length > 30) this.log.shift(); }

    start() {
      this.running = true;
      this.connect();
      this.timer = setInterval(() => this.tick(), 100);
    }

    stop() {
      this.running = false;
      clearInterval(this.timer);
      clearTimeout(this.announceTimer);
      if (this.ws) {
        try { this.ws.send(JSON.stringify({ action: 'announce', info_hash: this.infoHash, peer_id: this.peerId, event: 'stopped' })); } catch (e) { /* closed */ }
        this.ws.close();
      }
      for (const p of [...this.peers.values()]) this.dropPeer(p, 'stopped');
      for (const o of this.offers.values()) o.pc.close();
      this.offers.clear();
      // The player's requests end now, so it can go on without this engine.
      for (const c of this.chunks.values()) this.resolve(c, { status: 0, data: null, stopped: true });
      for (const w of this.partWaiters.splice(0)) w.resolve(null);
    }

    // --- tracker ---------------------------------------------------------------------------------------

    connect() {
      const url = this.o.tracker.startsWith('ws') ? this.o.tracker
        : `${location.protocol === 'https:' ? 'wss' : 'ws'}://${this.o.origin ? new URL(this.o.origin).host : location.host}${this.o.tracker}`;
      const ws = new WebSocket(url);
      this.ws = ws;
      // Joins at once without offers (so part announcements start now), then announces again with offers, whose ICE
      // gathering takes a second or two.
      ws.onopen = () => { this.send({ action: 'announce', info_hash: this.infoHash, peer_id: this.peerId, event: 'started', numwant: 0,
                                      offers: [], ...this.extension() }); this.announce(); };
      ws.onmessage = (e) => this.onTracker(e.data);
      ws.onclose = () => {
        if (this.ws !== ws || !this.running) return;
        this.note('tracker connection closed; again in 3 s');
        setTimeout(() => { if (this.running) this.connect(); }, 3000);
      };
    }

    send(msg) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
    }

    extension() { return this.o.parts ? { x_liveswarm: { parts: true } } : {}; }

    async announce(event) {
      clearTimeout(this.announceTimer);
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const room = this.o.maxNeighbours - this.peers.size - this.offers.size;
      // While P2P is switched off, announces only ask whether it is on again: no offers.
      const n = this.off ? 0 : Math.max(0, Math.min(this.o.offersPerAnnounce, room));
      if (this.off) this.askedSinceOff = true;
      // The offers gather their candidates side by side.
      const made = await Promise.all([...Array(n)].map(async () => {
        const pc = this.newConnection();
        if (!pc) return null;
        const dc = pc.createDataChannel('liveswarm', { ordered: true });
        await pc.setLocalDescription(await pc.createOffer());
        await waitIceGathering(pc, 2000);
        const id = randomHex(20);
        this.offers.set(id, { pc, dc, created: performance.now() });
        return { offer_id: id, offer: { type: 'offer', sdp: pc.localDescription.sdp } };
      }));
      const offers = made.filter(Boolean);
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const msg = { action: 'announce', info_hash: this.infoHash, peer_id: this.peerId, numwant: offers.length,
                    uploaded: this.uploadedBytes, downloaded: this.peerBytes + this.originBytes, offers, ...this.extension() };
      if (event) msg.event = event;
      this.ws.send(JSON.stringify(msg));
      const short = this.peers.size < this.o.maxNeighbours / 2;
      this.announceTimer = setTimeout(() => this.announce(), short ? this.o.reannounceMs : (this.interval || 20) * 1000);
    }

    async onTracker(text) {
      let m;
      try { m = JSON.parse(text); } catch (e) { return; }
      if (m.info_hash === this.infoHash && m.x_liveswarm && m.x_liveswarm.p2p === false) { this.switchedOff(m['failure reason']); return; }
      // Only the tracker writes x_liveswarm (what peers send is relayed field by field): a part announcement.
      if (m.info_hash === this.infoHash && m.x_liveswarm && m.x_liveswarm.part && !m.offer && !m.answer && !m.peer_id) {
        this.onPart(m.x_liveswarm.part);
        return;
      }
      if (m['failure reason']) { this.note(`tracker: ${m['failure reason']}`); return; }
      if (m.info_hash !== this.infoHash) return;
      if (m.interval && this.off && this.askedSinceOff) {
        // The operator switched P2P back on (an answer to an announce sent since it was off: one sent before could
        // be answered after the switch): offers again at once.
        this.off = false;
        this.note('P2P is on again');
        this.announce();
      }
      if (m.interval) {
        this.interval = m.interval;
        if (m.x_liveswarm) this.swarmPeers = m.x_liveswarm.peers;
      }
      if (m.offer && m.peer_id && m.offer_id) await this.answerOffer(m);
      if (m.answer && m.peer_id && m.offer_id) await this.takeAnswer(m);
    }

    /** The operator switched P2P off for the stream (the tracker said so): every neighbour is let go, so every chunk
     *  comes from the origin, and the engine keeps announcing (without offers) to learn when it is back on. */
    switchedOff(reason) {
      if (!this.off) this.note(`tracker: ${reason || 'P2P is off'}`);
      this.off = true;
      this.askedSinceOff = false;
      this.swarmPeers = 0;
      for (const p of [...this.peers.values()]) this.dropPeer(p, 'P2P switched off');
      for (const o of this.offers.values()) o.pc.close();
      this.offers.clear();
      clearTimeout(this.announceTimer);
      this.announceTimer = setTimeout(() => this.announce(), this.o.reannounceMs);
    }

    /** Two viewers that offered to each other at once would each keep a different connection and lose both: of two
     *  connections between the same pair, both sides keep the one offered by the smaller peer id. */
    keepNew(peerId, newOfferer) {
      const existing = this.peers.get(peerId);
      if (!existing) return true;
      if (newOfferer >= existing.offerer) return false;
      this.dropPeer(existing, 'a second connection to the same peer');
      return true;
    }

    async answerOffer(m) {
      if (this.off || m.peer_id === this.peerId || this.banned.has(m.peer_id)) return;
      if (!this.peers.has(m.peer_id) && this.peers.size >= this.o.maxNeighbours) return;
      if (!this.keepNew(m.peer_id, m.peer_id)) return;
      const pc = this.newConnection();
      if (!pc) return;
      const peer = new Peer(this, m.peer_id, pc);
      peer.offerer = m.peer_id;
      this.peers.set(m.peer_id, peer);
      pc.ondatachannel = (e) => peer.attach(e.channel);
      this.watchConnection(peer);
      try {
        await pc.setRemoteDescription(m.offer);
        await pc.setLocalDescription(await pc.createAnswer());
        await waitIceGathering(pc, 2000);
        this.ws.send(JSON.stringify({ action: 'announce', info_hash: this.infoHash, peer_id: this.peerId, to_peer_id: m.peer_id,
                                      offer_id: m.offer_id, answer: { type: 'answer', sdp: pc.localDescription.sdp } }));
      } catch (e) {
        this.dropPeer(peer, `answering: ${e.message}`);
      }
    }

    async takeAnswer(m) {
      const offer = this.offers.get(m.offer_id);
      if (!offer) return;
      this.offers.delete(m.offer_id);
      if (m.peer_id === this.peerId || this.banned.has(m.peer_id) || !this.keepNew(m.peer_id, this.peerId)) { offer.pc.close(); return; }
      const peer = new Peer(this, m.peer_id, offer.pc);
      peer.offerer = this.peerId;
      this.peers.set(m.peer_id, peer);
      peer.attach(offer.dc);
      this.watchConnection(peer);
      try { await offer.pc.setRemoteDescription(m.answer); } catch (e) { this.dropPeer(peer, `answer: ${e.message}`); }
    }

    watchConnection(peer) {
      peer.pc.onconnectionstatechange = () => {
        const s = peer.pc.connectionState;
        if (s === 'failed' || s === 'closed') this.dropPeer(peer, `connection ${s}`);
      };
      // A connection that never opens its channel frees its place.
      setTimeout(() => { if (!peer.open && this.peers.get(peer.id) === peer) this.dropPeer(peer, 'never connected'); }, 10000);
    }

    onPeerOpen(peer) {
      peer.json({ t: 'hello', have: this.order.filter((id) => this.chunks.get(id).bytes) });
      this.schedule();
    }

    dropPeer(peer, reason) {
      if (this.peers.get(peer.id) !== peer) return;
      this.peers.delete(peer.id);
      this.closedPeerBytes.in += peer.bytesIn;
      this.closedPeerBytes.out += peer.bytesOut;
      if (reason !== 'stopped') this.droppedPeers.push([peer.hex, reason]);
      if (this.droppedPeers.length > 50) this.droppedPeers.shift();
      if (peer.uploadingId != null) { this.uploadsNow -= 1; peer.uploadingId = null; }
      peer.close();
      this.note(`peer ${peer.hex.slice(16)} dropped: ${reason}`);
      this.schedule();
    }

    // --- part announcements ----------------------------------------------------------------------------

    onPart(p) {
      const m = typeof p.id === 'string' ? /^(\d+)\.(\d+)$/.exec(p.id) : null;
      if (!m || typeof p.sha256 !== 'string' || !Number.isFinite(p.time) || !Number.isInteger(p.init)) return;
      const info = { sequence: +m[1], index: +m[2], wall: p.time, independent: !!p.independent, map: `init-${p.init}.mp4`,
                     uri: `part-${p.id}.m4s`, hash: p.sha256, bytes: p.bytes };
      this.lastPartAt = performance.now();
      this.partsAnnounced += 1;
      if (!this.parts.has(p.id)) {
        this.parts.set(p.id, info);
        this.partOrder.push(p.id);
        while (this.partOrder.length > this.o.keepParts) this.parts.delete(this.partOrder.shift());
      }
      this.partWaiters = this.partWaiters.filter((w) => {
        const hit = this.partAt(w);
        if (hit) w.resolve(hit);
        return !hit;
      });
    }

    /** The announced part at `cursor`, or the next segment's first part (the cursor's segment ended before it). */
    partAt(cursor) {
      return this.parts.get(`${cursor.sequence}.${cursor.index}`) || this.parts.get(`${cursor.sequence + 1}.0`) || null;
    }

    /** Whether the origin's announcements are arriving (one in the last `partsQuietMs`). */
    partsFlowing() {
      return !this.off && this.running && this.lastPartAt != null && performance.now() - this.lastPartAt < this.o.partsQuietMs;
    }

    /** The part at `cursor` (or the next segment's first) as the origin announced it: {sequence, index, wall,
     *  independent, map, uri, hash}. Null at once when announcements are not flowing, or after `partWaitMs` without
     *  it, or when `signal` aborts: the player then reloads the playlist. */
    nextPart(cursor, signal) {
      const hit = this.partAt(cursor);
      if (hit) return Promise.resolve(hit);
      if (!this.partsFlowing() || (signal && signal.aborted)) return Promise.resolve(null);
      // Later parts were announced already: this one was made before the engine joined (or its announcement was lost),
      // and will not come.
      const newest = this.parts.get(this.partOrder[this.partOrder.length - 1]);
      if (newest && (newest.sequence > cursor.sequence + 1 || (newest.sequence === cursor.sequence && newest.index > cursor.index)
                     || (newest.sequence === cursor.sequence + 1 && newest.index > 0))) return Promise.resolve(null);
      return new Promise((resolve) => {
        const w = { sequence: cursor.sequence, index: cursor.index, resolve: null };
        const done = (v) => {
          clearTimeout(timer);
          if (signal) signal.removeEventListener('abort', abort);
          this.partWaiters = this.partWaiters.filter((x) => x !== w);
          resolve(v);
        };
        const abort = () => done(null);
        w.resolve = done;
        const timer = setTimeout(() => done(null), this.o.partWaitMs);
        if (signal) signal.addEventListener('abort', abort, { once: true });
        this.partWaiters.push(w);
      });
    }

    // --- chunks ----------------------------------------------------------------------------------------

    chunk(info) {
      let c = this.chunks.get(info.id);
      if (!c) {
        c = { id: info.id, uri: info.uri, hash: info.hash, bytes: null, waiters: [], http: false, wantedAt: null };
        this.chunks.set(info.id, c);
        this.order.push(info.id);
        while (this.order.length > this.o.keepChunks) {
          const old = this.chunks.get(this.order[0]);
          if (old.waiters.length) break;
          this.chunks.delete(this.order.shift());
        }
      } else if (!c.hash && info.hash) {
        c.hash = info.hash;
        c.uri = info.uri;
      }
      return c;
    }

    /** The verified bytes of a chunk the player wants next: {status, data}. When `signal` aborts (the player paused
     *  or stopped), the request ends with status 0, and an origin fetch nobody waits for any longer is aborted. */
    get(info, signal) {
      const c = this.chunk(info);
      if (c.bytes) return Promise.resolve({ status: 200, data: c.bytes });
      if (signal && signal.aborted) return Promise.resolve({ status: 0, data: null, aborted: true });
      if (c.wantedAt == null) c.wantedAt = performance.now();
      return new Promise((resolve) => {
        c.waiters.push(resolve);
        if (signal) {
          signal.addEventListener('abort', () => {
            if (!c.waiters.includes(resolve)) return;
            c.waiters = c.waiters.filter((r) => r !== resolve);
            if (!c.waiters.length && c.fetching) c.fetching.abort();
            resolve({ status: 0, data: null, aborted: true });
          }, { once: true });
        }
        this.schedule();
      });
    }

    /** Whether this viewer should now take a chunk nobody around has from the origin (seed it).
     *
     *  Every viewer draws a ticket per chunk (a hash of its peer id and the chunk id, so no messages are needed);
     *  ticket × swarm size estimates how many viewers drew a smaller one. A viewer waits that many `seedStepMs`
     *  after it first wanted the chunk, then fetches it unless a neighbour announced it meanwhile. The smallest
     *  ticket in the swarm fetches almost at once and the chunk spreads from it; others seed only if it has not
     *  reached them by their turn. Without neighbours a viewer seeds at once. */
    seedDue(c) {
      const open = [...this.peers.values()].filter((p) => p.open).length;
      if (!open) return true;
      const now = performance.now();
      // A neighbour said it is fetching this chunk from the origin: wait for its `have` (or for urgency).
      if (c.soonAt != null && now - c.soonAt < this.o.soonMs) {
        this.wake(c, c.soonAt + this.o.soonMs - now);
        return false;
      }
      const size = Math.max(open + 1, this.swarmPeers || 0);
      const wait = fnv(this.peerId + c.id) / 4294967296 * size * this.o.seedStepMs;
      const left = c.wantedAt + wait - now;
      if (left > 0) { this.wake(c, left); return false; }
      return true;
    }

    /** Runs the scheduler again when a chunk's wait ends (the 100 ms tick alone would be late by up to a tick). */
    wake(c, ms) {
      if (c.timer) return;
      c.timer = setTimeout(() => { c.timer = null; this.schedule(); }, Math.max(0, ms) + 1);
    }

    tick() {
      const now = performance.now();
      for (const [id, o] of this.offers) {
        if (now - o.created > this.o.offerTimeoutMs) { o.pc.close(); this.offers.delete(id); }
      }
      for (const p of this.peers.values()) {
        if (p.request && now - p.request.started > this.o.peerTimeoutMs) {
          this.note(`peer ${p.hex.slice(16)} too slow for ${p.request.id}`);
          p.json({ t: 'cancel', id: p.request.id });
          p.request = null;   // if the rest of it comes anyway, it is still checked and, if still needed, used
        }
      }
      this.schedule();
    }

    buffered() { return this.player ? this.player.bufferAhead() : 0; }

    schedule() {
      if (!this.running || this.frozen) return;
      const ahead = this.buffered();
      for (const c of this.chunks.values()) {
        if (c.bytes || !c.waiters.length || c.http) continue;
        const urgent = ahead < this.o.urgentSeconds;
        if (urgent || !c.hash) { if (urgent) this.urgent += 1; this.fetchHTTP(c); continue; }
        const asking = [...this.peers.values()].some((p) => p.request && p.request.id === c.id);
        if (asking) continue;
        const holders = [...this.peers.values()].filter((p) => p.open && p.have.has(c.id) && !p.request);
        if (holders.length) {
          const peer = holders[Math.floor(Math.random() * holders.length)];
          peer.request = { id: c.id, started: performance.now() };
          peer.json({ t: 'req', id: c.id });
        } else if (this.seedDue(c)) {
          // Nobody around has it, and it is this viewer's turn to take it from the origin. Neighbours are told, so
          // that they wait for this copy instead of fetching their own.
          this.seeded += 1;
          for (const p of this.peers.values()) { if (p.open) p.json({ t: 'soon', id: c.id }); }
          this.fetchHTTP(c);
        }
      }
    }

    async fetchHTTP(c) {
      c.http = true;
      c.fetching = new AbortController();
      try {
        // ?viewer= lets the origin count what each viewer took from it (its share, the operator's P2P switch).
        const r = await fetch(`${this.o.origin}/${this.o.stream}/${c.uri}?viewer=${binaryToHex(this.peerId)}`,
                              { cache: 'no-store', signal: c.fetching.signal });
        if (!r.ok) { c.http = false; this.resolve(c, { status: r.status, data: null }); return; }
        const data = new Uint8Array(await r.arrayBuffer());
        this.originBytes += data.length;
        this.httpChunks += 1;
        if (c.bytes) return;   // a peer was quicker
        if (c.hash && bytesToBase64(await sha256(data)) !== c.hash) {
          this.note(`origin chunk ${c.id} does not match its hash`);
        }
        this.accept(c, data);
      } catch (e) {
        if (e.name !== 'AbortError') this.note(`fetch ${c.id}: ${e.message}`);
        this.resolve(c, { status: 0, data: null });
      } finally {
        c.http = false;
        c.fetching = null;
      }
    }

    accept(c, data) {
      if (c.bytes) return;
      if (c.timer) { clearTimeout(c.timer); c.timer = null; }
      c.bytes = data;
      for (const p of this.peers.values()) { if (p.open) p.json({ t: 'have', id: c.id }); }
      this.resolve(c, { status: 200, data });
    }

    resolve(c, result) {
      const w = c.waiters;
      c.waiters = [];
      for (const r of w) r(result);
    }

    // --- the peer protocol -----------------------------------------------------------------------------

    onControl(peer, m) {
      switch (m.t) {
        case 'hello':
          if (Array.isArray(m.have)) for (const id of m.have.slice(-this.o.keepChunks)) if (typeof id === 'string') peer.have.add(id);
          this.schedule();
          break;
        case 'have':
          if (typeof m.id === 'string') { peer.have.add(m.id); if (peer.have.size > 4 * this.o.keepChunks) peer.have.delete(peer.have.values().next().value); }
          this.schedule();
          break;
        case 'req':
          this.onRequest(peer, m.id);
          break;
        case 'soon': {
          const c = typeof m.id === 'string' ? this.chunks.get(m.id) : null;
          if (c && !c.bytes) c.soonAt = performance.now();
          break;
        }
        case 'cancel':
          peer.uploads = peer.uploads.filter((id) => id !== m.id);
          if (peer.uploadingId === m.id) peer.abortUpload = true;   // stop mid-chunk: the rest would be thrown away
          break;
        case 'none':
          if (peer.request && peer.request.id === m.id) { peer.request = null; peer.have.delete(m.id); this.schedule(); }
          break;
        case 'data': {
          const size = m.size;
          if (!Number.isInteger(size) || size <= 0 || size > 16 * 1024 * 1024) {
            this.dropPeer(peer, `impossible data header for ${m.id}`);
            return;
          }
          // A chunk we cancelled may still come whole (the peer had sent it before our cancel reached it, or it
          // ignores cancels): it is hash-checked all the same, so a forger is caught whether or not it was in time.
          // Only chunks of the stream's list are taken in; the bytes of any other are skipped.
          peer.incoming = { id: m.id, size, buf: this.chunks.has(m.id) ? new Uint8Array(size) : null, got: 0 };
          break;
        }
        default:
          break;   // later versions may add messages
      }
    }

    async onPiece(peer, piece) {
      const inc = peer.incoming;
      if (!inc) return;   // no data header: nothing to add it to
      if (inc.got + piece.length > inc.size) { this.dropPeer(peer, `more bytes than announced for ${inc.id}`); return; }
      if (inc.buf) inc.buf.set(piece, inc.got);
      inc.got += piece.length;
      if (inc.got < inc.size) return;
      peer.incoming = null;
      if (!inc.buf) return;
      if (peer.request && peer.request.id === inc.id) peer.request = null;
      const c = this.chunks.get(inc.id);
      if (!c) { this.schedule(); return; }
      const digest = bytesToBase64(await sha256(inc.buf));
      if (digest !== c.hash) {
        this.badChunks += 1;
        this.banned.add(peer.id);
        this.dropPeer(peer, `chunk ${inc.id} failed its hash check`);
        if (!c.bytes && !c.http) this.fetchHTTP(c);
        return;
      }
      if (c.bytes) { this.schedule(); return; }   // came from elsewhere first
      peer.chunkBytesIn += inc.size;
      this.peerBytes += inc.size;
      this.peerChunks += 1;
      this.accept(c, inc.buf);
      this.schedule();
    }

    onRequest(peer, id) {
      if (this.frozen) return;
      const c = this.chunks.get(id);
      if (!c || !c.bytes || peer.uploads.length >= 8) { peer.json({ t: 'none', id }); return; }
      peer.uploads.push(id);
      this.pump(peer);
    }

    /** Sends a neighbour the chunks it asked for, one at a time, within the upload limits and the channel's
     *  buffer (bufferedAmount): a slow neighbour fills its own buffer, not the viewer's memory. */
    async pump(peer) {
      if (peer.uploadingId != null || this.uploadsNow >= this.o.maxUploads || this.frozen) return;
      const id = peer.uploads.shift();
      if (id === undefined) return;
      const c = this.chunks.get(id);
      if (!c || !c.bytes) { peer.json({ t: 'none', id }); this.pump(peer); return; }
      peer.uploadingId = id;
      peer.abortUpload = false;
      this.uploadsNow += 1;
      try {
        const data = c.bytes;
        peer.json({ t: 'data', id, size: data.length });
        for (let off = 0; off < data.length; off += this.o.pieceBytes) {
          if (!peer.open) return;
          if (peer.abortUpload || this.frozen) { peer.abortUpload = true; break; }
          const waitFrom = performance.now();
          while (peer.open && peer.dc.bufferedAmount > this.o.highWater) {
            if (performance.now() - waitFrom > 5000) { this.dropPeer(peer, 'not reading what it asked for'); return; }
            await new Promise((r) => { peer.dc.addEventListener('bufferedamountlow', r, { once: true }); setTimeout(r, 250); });
          }
          await this.throttle(Math.min(this.o.pieceBytes, data.length - off));
          if (!peer.open) return;
          peer.send(data.subarray(off, off + this.o.pieceBytes));
        }
        if (!peer.abortUpload) {
          peer.chunkBytesOut += data.length;
          this.uploadedBytes += data.length;
        }
      } finally {
        if (peer.uploadingId != null) { peer.uploadingId = null; this.uploadsNow -= 1; }
      }
      this.pump(peer);
      for (const p of this.peers.values()) if (p !== peer && p.uploads.length && p.uploadingId == null) this.pump(p);
    }

    async throttle(bytes) {
      if (!this.o.uploadKbps) return;
      const rate = this.o.uploadKbps * 125;   // bytes a second; the bucket holds a second's worth
      for (;;) {
        const now = performance.now();
        this.tokens = Math.min(rate, this.tokens + (now - this.tokensAt) * rate / 1000);
        this.tokensAt = now;
        if (this.tokens >= bytes) { this.tokens -= bytes; return; }
        await new Promise((r) => setTimeout(r, Math.ceil((bytes - this.tokens) / rate * 1000)));
      }
    }

    // --- figures ---------------------------------------------------------------------------------------

    /** Per neighbour, the engine's own byte counts, with its DataChannel's getStats() counts beside them. The
     *  engine stops trading first and waits until nothing is in flight (bufferedAmount 0, no transfer half-way), so
     *  that the two counts are of the same bytes; it does not trade again (this is for the end of a test). */
    async channelCheck() {
      this.frozen = true;
      const quiet = () => [...this.peers.values()].every((p) => !p.open || (p.dc.bufferedAmount === 0 && !p.incoming && p.uploadingId == null));
      for (let i = 0; i < 40 && !quiet(); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));   // what the other side had in flight arrives
      const out = [];
      for (const p of this.peers.values()) {
        if (!p.open) continue;
        const s = await p.pc.getStats();
        let dcIn = null, dcOut = null;
        s.forEach((r) => { if (r.type === 'data-channel' && r.label === 'liveswarm') { dcIn = r.bytesReceived; dcOut = r.bytesSent; } });
        out.push({ peer: p.hex, bytesIn: p.bytesIn, bytesOut: p.bytesOut, getStatsIn: dcIn, getStatsOut: dcOut,
                   buffered: p.dc ? p.dc.bufferedAmount : 0,
                   chunkBytesIn: p.chunkBytesIn, chunkBytesOut: p.chunkBytesOut });
      }
      return out;
    }

    stats() {
      const open = [...this.peers.values()].filter((p) => p.open);
      return {
        peerId: binaryToHex(this.peerId),
        neighbours: open.length,
        connecting: this.peers.size - open.length,
        offersOut: this.offers.size,
        swarmPeers: this.swarmPeers,
        p2pOff: this.off,       // the operator switched P2P off for the stream
        partsAnnounced: this.partsAnnounced,
        pcFailures: this.pcFailures,
        partsFlowing: this.partsFlowing(),
        originBytes: this.originBytes,
        peerBytes: this.peerBytes,
        uploadedBytes: this.uploadedBytes,
        // Every DataChannel byte, control messages included, over all neighbours (gone ones too).
        wireBytesIn: this.closedPeerBytes.in + [...this.peers.values()].reduce((n, p) => n + p.bytesIn, 0),
        wireBytesOut: this.closedPeerBytes.out + [...this.peers.values()].reduce((n, p) => n + p.bytesOut, 0),
        httpChunks: this.httpChunks,
        peerChunks: this.peerChunks,
        seeded: this.seeded,
        urgent: this.urgent,
        badChunks: this.badChunks,
        peerId: binaryToHex(this.peerId),
        droppedPeers: this.droppedPeers.slice(-10),
        log: this.log.slice(-8),
      };
    }
  }

  P2PEngine.hexToBinary = hexToBinary;
  P2PEngine.binaryToHex = binaryToHex;
  global.P2PEngine = P2PEngine;
})(window);

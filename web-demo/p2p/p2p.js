// The P2P viewer page: LivePlayer (live-http/player.js) with the P2P engine as its part loader, reports to
// /api/v1/p2p/reports every 2 s, and a chart of bytes from the origin and from peers.
//
// Query: ?stream=live/cam&p2p=1&target=3&autoplay=1, and engine options seedStep=, neighbours=, urgent=,
// uploadKbps=, relay=1 (peers through TURN relays only, when the server hands TURN out for P2P) and announce=0 (no part
// announcements: the playlist is reloaded for every part, as before they existed); embed=1 shows
// the video alone (the swarm lab's viewers, web-demo/lab).
// window.p2pStats() and window.p2pCheck() are for test drivers; window.viewer (pause, resume, setP2P, stats) for the
// lab.
(function () {
  'use strict';
  const q = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  if (q.get('stream')) $('stream').value = q.get('stream');
  if (q.get('target')) $('target').value = q.get('target');
  if (q.get('p2p') === '0') $('p2p').checked = false;
  if (q.get('embed') === '1') document.body.classList.add('embed');
  const video = $('video');
  // One id for the page's life, whether P2P is on or off: the tracker's peer id, and (in hex) the viewer id of the
  // reports and of every origin request, so the origin's per-viewer count follows the viewer across switches.
  const peerId = '-LS0001-' + [...crypto.getRandomValues(new Uint8Array(6))].map((x) => x.toString(16).padStart(2, '0')).join('');
  const viewerId = P2PEngine.binaryToHex(peerId);
  let player = null;
  let engine = null;
  let swarm = null;
  let reportTimer = null;
  // Counts of engines stopped by a P2P switch, so that the page's totals never go down.
  const past = { originBytes: 0, peerBytes: 0, uploadedBytes: 0, pcFailures: 0 };
  const samples = [];   // [time, origin bytes, peer bytes, uploaded bytes], every second

  async function swarmOf(stream) {
    for (;;) {
      try {
        const r = await fetch(`/api/v1/streams/${stream}/chunks`, { cache: 'no-store' });
        if (r.ok) { const c = await r.json(); if (c.swarm) return c.swarm; }
      } catch (e) { /* not up yet */ }
      await new Promise((res) => setTimeout(res, 1000));
    }
  }

  function number(name, fallback) {
    const v = parseFloat(q.get(name));
    return Number.isFinite(v) ? v : fallback;
  }

  function newEngine(stream) {
    return new P2PEngine({
      stream, swarm, iceServers: swarm.iceServers, player, peerId,
      seedStepMs: number('seedStep', 100), maxNeighbours: number('neighbours', 8), urgentSeconds: number('urgent', 0.7),
      uploadKbps: number('uploadKbps', 0), iceTransportPolicy: q.get('relay') === '1' ? 'relay' : 'all',
      parts: q.get('announce') !== '0',
    });
  }

  async function play() {
    stop();
    const stream = $('stream').value;
    const target = parseFloat($('target').value) || 3;
    if ($('p2p').checked) {
      swarm = await swarmOf(stream);
      engine = newEngine(stream);
    }
    // The viewer id of the reports goes with every origin request, so the origin counts this viewer as P2P.
    player = new LivePlayer(video, { stream, targetDelay: target, loader: engine, viewer: viewerId });
    if (engine) { engine.player = player; engine.start(); }
    player.start();
    window.livePlayer = player;
    window.p2pEngine = engine;
    reportTimer = setInterval(report, 2000);
  }

  /** P2P on or off for this viewer alone, without stopping the player: off, the engine leaves the swarm and every
   *  part comes from the origin (with blocking playlist reloads); on, a new engine joins under the same peer id. */
  async function setP2P(on) {
    if (!player || on === !!engine) return;
    if (!on) {
      const es = engine.stats();
      past.originBytes += es.originBytes; past.peerBytes += es.peerBytes; past.uploadedBytes += es.uploadedBytes;
      past.pcFailures += es.pcFailures;
      const old = engine;
      engine = null;
      player.o.loader = null;
      old.stop();
    } else {
      swarm = swarm || await swarmOf($('stream').value);
      if (engine || !player) return;
      engine = newEngine($('stream').value);
      engine.player = player;
      player.o.loader = engine;
      engine.start();
    }
    $('p2p').checked = on;
    window.p2pEngine = engine;
  }

  function stop() {
    if (reportTimer) clearInterval(reportTimer);
    if (engine) engine.stop();
    if (player) player.stop();
    engine = null;
    player = null;
  }

  function totals() {
    const ps = player ? player.stats() : null;
    const es = engine ? engine.stats() : null;
    return {
      originBytes: (ps ? ps.originMediaBytes : 0) + (es ? es.originBytes : 0) + past.originBytes,
      peerBytes: (es ? es.peerBytes : 0) + past.peerBytes,
      uploadedBytes: (es ? es.uploadedBytes : 0) + past.uploadedBytes,
      player: ps,
      engine: es,
    };
  }

  function report() {
    const t = totals();
    if (!t.player) return;
    const body = {
      stream: $('stream').value, viewer: viewerId, p2p: !!engine,
      delay: t.player.delay, stalls: t.player.stalls, stalledMs: t.player.stalledMs, firstFrameMs: t.player.firstFrameMs,
      originBytes: t.originBytes, peerBytes: t.peerBytes, uploadedBytes: t.uploadedBytes,
      neighbours: t.engine ? t.engine.neighbours : 0, badChunks: t.engine ? t.engine.badChunks : 0,
      droppedPeers: t.engine ? t.engine.droppedPeers.length : 0,
    };
    fetch('/api/v1/p2p/reports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .catch(() => { /* the next report will do */ });
  }

  function draw() {
    const c = $('chart');
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    if (samples.length < 2) return;
    const rates = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = (samples[i][0] - samples[i - 1][0]) / 1000;
      rates.push([1, 2, 3].map((k) => Math.max(0, (samples[i][k] - samples[i - 1][k]) * 8 / 1000 / dt)));
    }
    const max = Math.max(100, ...rates.map((r) => Math.max(r[0] + r[1], r[2])));
    const w = c.width / 60;
    rates.slice(-60).forEach((r, i) => {
      const hOrigin = r[0] / max * (c.height - 10);
      const hPeer = r[1] / max * (c.height - 10);
      g.fillStyle = '#c60';
      g.fillRect(i * w, c.height - hOrigin, w - 1, hOrigin);
      g.fillStyle = '#090';
      g.fillRect(i * w, c.height - hOrigin - hPeer, w - 1, hPeer);
      g.fillStyle = '#06c';
      g.fillRect(i * w + w / 3, c.height - r[2] / max * (c.height - 10), w / 3, 2);
    });
    g.fillStyle = '#666';
    g.fillText(`${Math.round(max)} kbit/s`, 4, 10);
  }

  function show() {
    const t = totals();
    samples.push([performance.now(), t.originBytes, t.peerBytes, t.uploadedBytes]);
    if (samples.length > 61) samples.shift();
    draw();
    if (!t.player) return;
    const p = t.player;
    const share = t.peerBytes + t.originBytes > 0 ? t.peerBytes / (t.peerBytes + t.originBytes) : 0;
    const rows = [
      ['delay', p.delay == null ? '-' : `${p.delay.toFixed(2)} s (target ${p.targetDelay})`],
      ['first frame', p.firstFrameMs == null ? '-' : `${p.firstFrameMs} ms`],
      ['stalls', `${p.stalls} (${(p.stalledMs / 1000).toFixed(1)} s)`],
      ['from the origin', `${(t.originBytes / 1e6).toFixed(2)} MB`],
      ['from peers', `${(t.peerBytes / 1e6).toFixed(2)} MB (${(share * 100).toFixed(0)} %)`],
      ['sent to peers', `${(t.uploadedBytes / 1e6).toFixed(2)} MB`],
    ];
    if (t.engine) {
      rows.push(['neighbours', t.engine.p2pOff ? 'none: P2P is switched off for this stream by the operator'
        : `${t.engine.neighbours} (swarm ${t.engine.swarmPeers ?? '-'})`]);
      rows.push(['chunks', `${t.engine.peerChunks} from peers, ${t.engine.httpChunks} from the origin (${t.engine.seeded} seeded, ${t.engine.urgent} urgent)`]);
      rows.push(['bad chunks', `${t.engine.badChunks}, peers dropped ${t.engine.droppedPeers.length}`]);
    }
    $('stats').innerHTML = rows.map(([k, v]) => `<span>${k}</span><b>${v}</b>`).join('');
    $('errors').textContent = [...(p.errors || []), ...(t.engine ? t.engine.log : [])].slice(-6).join('\n');
  }

  $('play').onclick = () => { play(); };
  $('p2p').onchange = () => { if (player) setP2P($('p2p').checked); };
  // Pause stops fetching altogether (playlists too), not only the picture; resume goes on at the target delay.
  $('pause').onclick = () => {
    if (!player) return;
    if (player.paused) player.resume(); else player.pause();
    $('pause').textContent = player.paused ? 'Resume' : 'Pause';
  };
  setInterval(show, 1000);
  if (q.get('autoplay') !== '0') play();

  /** For test drivers: the player's and the engine's figures, and this page's totals. */
  window.p2pStats = () => {
    const t = totals();
    const es0 = t.engine;
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    return { viewer: viewerId, p2p: !!engine, originBytes: t.originBytes,
             peerBytes: t.peerBytes, uploadedBytes: t.uploadedBytes, player: t.player, engine: t.engine,
             // Frames shown so far, and seconds since the first one: a starved machine shows fewer than the stream has.
             framesPresented: q ? q.totalVideoFrames - q.droppedVideoFrames : null,
             framesDecoded: q ? q.totalVideoFrames : null, framesDropped: q ? q.droppedVideoFrames : null,
             pcFailures: (es0 ? es0.pcFailures : 0) + past.pcFailures,
             playingSeconds: player && player.firstFrameMs != null ? (performance.now() - player.startedAt - player.firstFrameMs) / 1000 : null };
  };
  /** For the swarm lab (web-demo/lab), which holds this page in an iframe. */
  window.viewer = {
    id: viewerId,
    pause: () => { if (player) { player.pause(); $('pause').textContent = 'Resume'; } },
    resume: () => { if (player) { player.resume(); $('pause').textContent = 'Pause'; } },
    setP2P,
    stats: () => window.p2pStats(),
  };
  /** Per neighbour: the engine's byte counts beside its DataChannel's getStats() counts. */
  window.p2pCheck = () => (engine ? engine.channelCheck() : Promise.resolve([]));
})();

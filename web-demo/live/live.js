// WHEP player for any live stream: RTMP-published streams come through the server's RTMP-to-WebRTC bridge
// (Sources/SFU/Bridge), WHIP-published ones straight from the SFU. window.liveStats() returns what the page
// measures, for people and for tests.
'use strict';

const q = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
if (q.get('stream')) $('stream').value = q.get('stream');
const video = $('video');
// ?clock=1: the publisher draws its wall clock into the frames; read it back from every presented frame.
const clock = q.get('clock') === '1' && window.GlassClock ? GlassClock.attach(video, { windowSeconds: 5 }) : null;

class WhepPlayer {
  constructor(stream) {
    this.stream = stream;
    this.s = { stream, state: 'new', error: null, resource: null, firstFrameMs: null, connectedMs: null };
    this.history = [];
  }

  async start() {
    const t0 = performance.now();
    this.s.startedAt = Date.now();
    this.t0 = t0;
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.ontrack = (e) => { media.addTrack(e.track); video.srcObject = media; };
    pc.onconnectionstatechange = () => {
      this.s.state = pc.connectionState;
      if (pc.connectionState === 'connected' && this.s.connectedMs == null) this.s.connectedMs = Math.round(performance.now() - t0);
    };
    const onFrame = () => { if (this.s.firstFrameMs == null) this.s.firstFrameMs = Math.round(performance.now() - t0); };
    video.requestVideoFrameCallback(onFrame);
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch(`/whep/${this.stream}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (!r.ok) throw new Error(`WHEP ${r.status}: ${await r.text()}`);
    this.s.resource = r.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    this.timer = setInterval(() => this.poll(), 500);
  }

  stop() {
    clearInterval(this.timer);
    if (this.pc) this.pc.close();
    if (this.s.resource) fetch(this.s.resource, { method: 'DELETE', keepalive: true });
    this.s.resource = null;
  }

  async poll() {
    const stats = await this.pc.getStats();
    stats.forEach((r) => {
      if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
      const s = this.s, prev = this.last;
      if (prev && r.timestamp > prev.timestamp) {
        s.bitrateKbps = Math.round((r.bytesReceived - prev.bytesReceived) * 8 / (r.timestamp - prev.timestamp));
        s.fps = Math.round((r.framesDecoded - prev.framesDecoded) * 1000 / (r.timestamp - prev.timestamp) * 10) / 10;
      }
      // The SSRC and the packet counts show whether the stream stayed one RTP stream (a republish must not
      // change the SSRC, nor make packets look lost).
      if (s.ssrc !== undefined && s.ssrc !== r.ssrc) s.ssrcChanges = (s.ssrcChanges || 0) + 1;
      Object.assign(s, {
        ssrc: r.ssrc, codec: stats.get(r.codecId) ? `${stats.get(r.codecId).mimeType} ${stats.get(r.codecId).sdpFmtpLine || ''}` : null,
        framesDecoded: r.framesDecoded, keyFramesDecoded: r.keyFramesDecoded, framesDropped: r.framesDropped,
        frameWidth: r.frameWidth, frameHeight: r.frameHeight, packetsReceived: r.packetsReceived, packetsLost: r.packetsLost,
        nackCount: r.nackCount, pliCount: r.pliCount, freezeCount: r.freezeCount, totalFreezesDuration: r.totalFreezesDuration,
        jitterBufferMs: r.jitterBufferEmittedCount ? Math.round(r.jitterBufferDelay / r.jitterBufferEmittedCount * 1000) : null,
        decoderImplementation: r.decoderImplementation,
      });
      this.last = r;
      this.history.push([Date.now(), r.framesDecoded, r.packetsReceived, r.packetsLost, r.ssrc]);
      if (this.history.length > 1200) this.history.shift();
    });
  }
}

let player = null;
function play() {
  if (player) player.stop();
  if (clock) clock.reset();
  player = new WhepPlayer($('stream').value);
  window.player = player;
  player.start().catch((e) => { player.s.error = String(e); console.error(e); });
}
$('play').onclick = play;
$('stop').onclick = () => { if (player) player.stop(); };
$('unmute').onclick = () => { video.muted = !video.muted; $('unmute').textContent = video.muted ? 'Unmute' : 'Mute'; };
window.addEventListener('pagehide', () => { if (player) player.stop(); });

/** For test drivers: the player's numbers and, with ?clock=1, the glass-to-glass ones (`samples`: every frame read). */
window.liveStats = (samples) => ({ player: player ? Object.assign({}, player.s) : null, clock: clock ? clock.stats() : null,
  history: player ? player.history : [], samples: samples && clock ? clock.samples(100000) : [] });

setInterval(() => {
  const s = player ? player.s : null, c = clock ? clock.stats() : null;
  const ms = (v) => (v == null ? '–' : `${v} ms`);
  const rows = s ? [
    ['state', s.state], ['time to first frame', ms(s.firstFrameMs)], ['connected after', ms(s.connectedMs)],
    ['codec', s.codec || '–'], ['resolution', s.frameWidth ? `${s.frameWidth}x${s.frameHeight}` : '–'],
    ['frame rate', s.fps == null ? '–' : `${s.fps} fps`], ['bitrate', s.bitrateKbps == null ? '–' : `${(s.bitrateKbps / 1000).toFixed(2)} Mbit/s`],
    ['jitter buffer', ms(s.jitterBufferMs)], ['packets lost / NACKs', `${s.packetsLost ?? '–'} / ${s.nackCount ?? '–'}`],
    ['freezes', s.freezeCount == null ? '–' : `${s.freezeCount} (${s.totalFreezesDuration.toFixed(1)} s)`],
  ] : [['', 'press Play']];
  if (c) rows.push(['glass-to-glass (5 s median, p95)', c.window.medianMs != null ? `${Math.round(c.window.medianMs)} ms, ${Math.round(c.window.p95Ms)} ms` : '–'],
                   ['frames read / corrupt / backwards', `${c.framesDecoded} / ${c.framesCorrupt} / ${c.backwards}`]);
  $('stats').innerHTML = rows.map(([k, v]) => `<span>${k}</span><b>${v}</b>`).join('');
  $('errors').textContent = s && s.error ? s.error : '';
}, 250);

if (q.get('autoplay') !== '0') play();

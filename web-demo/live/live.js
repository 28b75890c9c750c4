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
// ?audio=1 (&tone=HZ): listen to the received audio (web-demo/shared/audio-meter.js). ?sync=1: the publisher flashes
// the picture and beeps at the same instants (tools/av-sync/publish.sh); the page pairs flashes with beeps.
const sync = q.get('sync') === '1';
const listen = sync || q.get('audio') === '1';
const flashes = sync ? watchFlashes(video) : null;

/** Times (performance.now, when displayed) at which the picture turned bright after at least 5 dark frames. */
function watchFlashes(v) {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 8;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const out = [];
  let dark = 0;
  const onFrame = (now, meta) => {
    if (v.videoWidth) {
      g.drawImage(v, 0, 0, 8, 8);
      const d = g.getImageData(0, 0, 8, 8).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
      const bright = sum / (d.length / 4) / 3 > 128;
      if (bright && dark >= 5) out.push(meta.expectedDisplayTime);
      dark = bright ? 0 : dark + 1;
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  return out;
}

/** Each beep paired with the flash nearest to it (within 500 ms): audio minus video, in ms (positive: audio late). */
function syncOffsets(beeps) {
  if (!flashes) return [];
  return beeps.map((b) => {
    let best = null;
    for (const f of flashes) if (best === null || Math.abs(b - f) < Math.abs(b - best)) best = f;
    return best !== null && Math.abs(b - best) < 500 ? Math.round((b - best) * 10) / 10 : null;
  }).filter((x) => x !== null);
}

class WhepPlayer {
  constructor(stream) {
    this.stream = stream;
    this.s = { stream, state: 'new', error: null, resource: null, firstFrameMs: null, connectedMs: null };
    this.history = [];
    this.audioHistory = [];
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
    pc.ontrack = (e) => {
      media.addTrack(e.track);
      video.srcObject = media;
      if (e.track.kind === 'audio' && listen && window.AudioMeter) {
        AudioMeter.attach(e.track, { tone: Number(q.get('tone')) || null, webAudio: q.get('webaudio') === '1' })
          .then((m) => { this.meter = m; }).catch((err) => { this.s.error = `audio meter: ${err}`; });
      }
    };
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
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        const codec = stats.get(r.codecId);
        this.s.audio = {
          ssrc: r.ssrc, codec: codec ? `${codec.mimeType}/${codec.clockRate}/${codec.channels || 1} ${codec.sdpFmtpLine || ''}` : null,
          packetsReceived: r.packetsReceived, packetsLost: r.packetsLost, totalSamplesReceived: r.totalSamplesReceived,
          concealedSamples: r.concealedSamples, silentConcealedSamples: r.silentConcealedSamples, concealmentEvents: r.concealmentEvents,
          insertedSamplesForDeceleration: r.insertedSamplesForDeceleration, removedSamplesForAcceleration: r.removedSamplesForAcceleration,
          jitterBufferMs: r.jitterBufferEmittedCount ? Math.round(r.jitterBufferDelay / r.jitterBufferEmittedCount * 1000) : null,
          totalSamplesDuration: r.totalSamplesDuration,
        };
        this.audioHistory.push([Date.now(), r.totalSamplesReceived, r.packetsReceived, r.concealedSamples, r.estimatedPlayoutTimestamp ?? null,
          r.insertedSamplesForDeceleration, r.removedSamplesForAcceleration]);
        if (this.audioHistory.length > 1200) this.audioHistory.shift();
        return;
      }
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
      this.history.push([Date.now(), r.framesDecoded, r.packetsReceived, r.packetsLost, r.ssrc, r.estimatedPlayoutTimestamp ?? null]);
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
window.liveStats = (samples) => {
  const meter = player && player.meter ? player.meter.stats() : null;
  return { player: player ? Object.assign({}, player.s) : null, clock: clock ? clock.stats() : null,
    history: player ? player.history : [], audioHistory: player ? player.audioHistory : [],
    samples: samples && clock ? clock.samples(100000) : [], meter,
    sync: sync ? { flashes: flashes.length, beeps: meter ? meter.onsets.length : 0, offsetsMs: syncOffsets(meter ? meter.onsets : []) } : null };
};

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
  const a = s && s.audio, m = player && player.meter ? player.meter.stats() : null;
  if (a) rows.push(['audio', `${a.codec || '–'}, ${a.packetsLost} lost, ${a.concealmentEvents} concealed, buffer ${ms(a.jitterBufferMs)}`]);
  if (m) rows.push(['audio heard', `level ${m.level ? (20 * Math.log10(m.level)).toFixed(1) + ' dBFS' : '–'}, ${m.frequencies.length ? Math.round(m.frequencies[m.frequencies.length - 1]) + ' Hz, ' : ''}gaps ${m.gaps}, clicks ${m.clicks}`]);
  if (sync && m) {
    const o = syncOffsets(m.onsets).slice().sort((x, y) => x - y);
    rows.push(['audio − video (median)', o.length ? `${o[o.length >> 1]} ms over ${o.length} beeps` : '–']);
  }
  if (c) rows.push(['glass-to-glass (5 s median, p95)', c.window.medianMs != null ? `${Math.round(c.window.medianMs)} ms, ${Math.round(c.window.p95Ms)} ms` : '–'],
                   ['frames read / corrupt / backwards', `${c.framesDecoded} / ${c.framesCorrupt} / ${c.backwards}`]);
  $('stats').innerHTML = rows.map(([k, v]) => `<span>${k}</span><b>${v}</b>`).join('');
  $('errors').textContent = s && s.error ? s.error : '';
}, 250);

if (q.get('autoplay') !== '0') play();

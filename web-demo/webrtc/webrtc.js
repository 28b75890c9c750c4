// WHIP publisher and WHEP player (server side: Sources/Server/WebRTCRoutes.swift, Sources/SFU).
// window.webrtcStats() returns what the page measures, for people and for tests.
'use strict';

const params = new URLSearchParams(location.search);
const role = params.get('role') === 'play' ? 'play' : 'publish';
const stream = params.get('stream') || 'live/webrtc';
const state = { role, stream, ice: 'new', connection: 'new', error: null, resource: null, startedAt: performance.now() };
window.webrtcState = state;

document.getElementById('role').textContent = role === 'play' ? 'playing' : 'publishing';
document.getElementById('stream').textContent = stream;
document.getElementById('publishLink').href = `?role=publish&stream=${encodeURIComponent(stream)}`;
document.getElementById('playLink').href = `?role=play&stream=${encodeURIComponent(stream)}`;

async function exchange(pc, path) {
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(`/${path}/${stream}`, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
  });
  if (!response.ok) throw new Error(`${path.toUpperCase()} ${response.status}: ${await response.text()}`);
  state.resource = response.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
}

function watch(pc) {
  pc.oniceconnectionstatechange = () => { state.ice = pc.iceConnectionState; };
  pc.onconnectionstatechange = () => {
    state.connection = pc.connectionState;
    if (pc.connectionState === 'connected' && state.connectedMs === undefined) {
      state.connectedMs = Math.round(performance.now() - state.startedAt);
    }
  };
  // Leaving the page ends the session at once instead of at consent expiry.
  window.addEventListener('pagehide', () => { if (state.resource) fetch(state.resource, { method: 'DELETE', keepalive: true }); });
}

// A canvas in one colour with a moving clock (so every frame differs), and a sine tone. With `noise`, random
// blocks fill the picture every frame, so the encoder needs all the bitrate it is allowed. With `clock`, the glass
// clock strip (tools/glass-clock/README.md) across the top, for viewers that measure glass-to-glass delay. With
// `resize` (SECONDS:WxH), the canvas changes size then, and so does the video the encoder is given.
function testPattern(color, tone, size, noise, clock, resize) {
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = size;
  document.getElementById('media').appendChild(canvas);
  const ctx = canvas.getContext('2d');
  if (resize) {
    const [at, wh] = resize.split(':');
    setTimeout(() => {
      [canvas.width, canvas.height] = wh.split('x').map(Number);
      state.resizedAt = Math.round(performance.now() - state.startedAt);
    }, Number(at) * 1000);
  }
  setInterval(() => {
    ctx.fillStyle = `#${color}`;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (clock) {
      const cell = canvas.width / GlassClock.COLS;
      const bits = GlassClock.encodeBits(Date.now());
      for (let k = 0; k < bits.length; k++) {
        ctx.fillStyle = bits[k] ? '#fff' : '#000';
        ctx.fillRect((k % GlassClock.COLS) * cell, Math.floor(k / GlassClock.COLS) * cell, cell, cell);
      }
    }
    for (let i = 0; noise && i < 1500; i++) {
      ctx.fillStyle = `rgb(${Math.random() * 255 | 0},${Math.random() * 255 | 0},${Math.random() * 255 | 0})`;
      ctx.fillRect(Math.random() * canvas.width | 0, Math.random() * canvas.height | 0, 8, 8);
    }
    ctx.fillStyle = '#fff';
    ctx.font = '16px monospace';
    ctx.fillText(new Date().toISOString().slice(11, 23), 8, clock ? canvas.width / 16 + 20 : 20);
  }, 33);
  const media = canvas.captureStream(30);
  const audio = new AudioContext();
  const osc = audio.createOscillator();
  osc.frequency.value = tone;
  const dest = audio.createMediaStreamDestination();
  osc.connect(dest);
  osc.start();
  audio.resume();
  media.addTrack(dest.stream.getAudioTracks()[0]);
  return media;
}

async function publish() {
  const media = params.get('camera') === '1'
    ? await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } })
    : testPattern(params.get('color') || '2060c0', Number(params.get('tone') || 440),
      (params.get('size') || '320x240').split('x').map(Number), params.get('noise') === '1',
      params.get('clock') === '1' && !!window.GlassClock, params.get('resize'));
  state.color = params.get('color');
  state.tone = Number(params.get('tone') || 0);
  const pc = new RTCPeerConnection(await pcConfig());
  watch(pc);
  for (const t of media.getTracks()) {
    const transceiver = pc.addTransceiver(t, { direction: 'sendonly', streams: [media] });
    // `codec=h264` or `codec=vp8` offers that video codec alone (with its RTX), whatever the server prefers.
    const only = params.get('codec');
    if (only && t.kind === 'video' && transceiver.setCodecPreferences && RTCRtpSender.getCapabilities) {
      const codecs = RTCRtpSender.getCapabilities('video').codecs;
      const wanted = codecs.filter((c) => c.mimeType.toLowerCase() === `video/${only.toLowerCase()}`);
      transceiver.setCodecPreferences(wanted.concat(codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')));
    }
  }
  window.pc = pc;
  await exchange(pc, 'whip');
  // A broadcast keeps its picture size and gives up frame rate first under CPU or bandwidth pressure: each
  // resolution change is a new sequence header for RTMP, FLV and HLS viewers.
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const p = sender.getParameters();
    // `degradation=balanced` (or maintain-framerate) lets the encoder shrink the picture, to provoke the
    // resolution changes a camera page may make by itself.
    p.degradationPreference = params.get('degradation') || 'maintain-resolution';
    await sender.setParameters(p).catch((e) => console.warn('degradationPreference', e));
  }
}

/** How a TURN URL reaches its server: 'tls' (turns:), 'tcp' (transport=tcp) or 'udp'. */
function turnTransport(url) {
  if (url.startsWith('turns:')) return 'tls';
  return /[?&]transport=tcp\b/.test(url) ? 'tcp' : 'udp';
}

// The ICE servers LiveSwarm hands out (STUN, and TURN with credentials for this session). `relay=1` keeps the
// connection on TURN relays only; `turn=udp`, `turn=tcp` or `turn=tls` keeps one TURN transport (for trying each).
async function pcConfig() {
  let iceServers = [];
  try {
    const r = await fetch('/api/v1/ice-servers');
    if (r.ok) iceServers = (await r.json()).iceServers || [];
  } catch (e) {
    console.warn('no ICE servers from the server', e);
  }
  const only = params.get('turn');
  if (only) {
    iceServers = iceServers.map((s) => Object.assign({}, s, { urls: s.urls.filter((u) => u.startsWith('stun:') || turnTransport(u) === only) }))
      .filter((s) => s.urls.length);
  }
  state.iceServers = iceServers.flatMap((s) => s.urls);
  return { iceServers, iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all' };
}

async function play() {
  const pc = new RTCPeerConnection(await pcConfig());
  watch(pc);
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  document.getElementById('media').appendChild(video);
  const remote = new MediaStream();
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    video.srcObject = remote;
    if (e.track.kind === 'audio') listen(remote);
  };
  window.pc = pc;
  await exchange(pc, 'whep');
  // The colour in the middle of the picture, as the page sees it.
  const probe = document.createElement('canvas');
  probe.width = 32;
  probe.height = 24;
  setInterval(() => {
    if (video.videoWidth === 0) return;
    const c = probe.getContext('2d', { willReadFrequently: true });
    c.drawImage(video, 0, 0, probe.width, probe.height);
    const d = c.getImageData(16, 14, 1, 1).data;
    state.seenColor = [d[0], d[1], d[2]];
  }, 250);
}

// The strongest frequency of the received audio.
function listen(media) {
  const audio = new AudioContext();
  const source = audio.createMediaStreamSource(media);
  const analyser = audio.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  setInterval(() => {
    analyser.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    if (bins[best] > -80) state.heardHz = Math.round(best * audio.sampleRate / analyser.fftSize);
  }, 250);
}

async function readStats() {
  if (!window.pc) return;
  const stats = await window.pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      Object.assign(state, { framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        videoPacketsLost: s.packetsLost, videoPacketsReceived: s.packetsReceived,
        retransmittedPacketsReceived: s.retransmittedPacketsReceived, nackCount: s.nackCount, pliCount: s.pliCount, freezeCount: s.freezeCount,
        totalFreezesDuration: s.totalFreezesDuration, framesReceived: s.framesReceived, framesDropped: s.framesDropped,
        keyFramesDecoded: s.keyFramesDecoded });
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') state.audioSamples = s.totalSamplesReceived;
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      if (state.videoBytesSent !== undefined && state.statsAt !== undefined) {
        state.videoSendKbps = Math.round((s.bytesSent - state.videoBytesSent) * 8 / (s.timestamp - state.statsAt));
        state.maxVideoSendKbps = Math.max(state.maxVideoSendKbps || 0, state.videoSendKbps);
      }
      state.statsAt = s.timestamp;
      Object.assign(state, { framesEncoded: s.framesEncoded, videoBytesSent: s.bytesSent, encoderTargetBitrate: s.targetBitrate,
        frameWidthSent: s.frameWidth, qualityLimitationReason: s.qualityLimitationReason, framesSent: s.framesSent,
        keyFramesEncoded: s.keyFramesEncoded, pliReceived: s.pliCount, nackReceived: s.nackCount,
        retransmittedPacketsSent: s.retransmittedPacketsSent });
    }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') state.audioPacketsSent = s.packetsSent;
    // Built by the browser from the server's receiver reports: what LiveSwarm says it got of our video.
    if (s.type === 'remote-inbound-rtp' && s.kind === 'video') {
      Object.assign(state, { videoRoundTripTime: s.roundTripTime, videoRoundTripTimeMeasurements: s.roundTripTimeMeasurements,
        videoReportedLost: s.packetsLost, videoReportedJitter: s.jitter });
    }
    // The pair in use: whether this browser reaches LiveSwarm directly or through a TURN relay (and over what).
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      const local = pair && stats.get(pair.localCandidateId);
      if (local) Object.assign(state, { localCandidateType: local.candidateType, relayProtocol: local.relayProtocol, candidateProtocol: local.protocol });
    }
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.availableOutgoingBitrate !== undefined) {
      state.availableOutgoingBitrate = s.availableOutgoingBitrate;
      // When the estimate first passed 1 Mbit/s, in ms since the page started.
      if (s.availableOutgoingBitrate > 1e6 && state.estimateAbove1MbpsMs === undefined) {
        state.estimateAbove1MbpsMs = Math.round(performance.now() - state.startedAt);
      }
    }
  });
  const dl = document.getElementById('stats');
  dl.innerHTML = '';
  for (const [k, v] of Object.entries(state)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) continue;
    dl.insertAdjacentHTML('beforeend', `<dt>${k}</dt><dd>${Array.isArray(v) ? v.join(', ') : v}</dd>`);
  }
}
setInterval(readStats, 1000);

window.webrtcStats = () => Object.assign({}, state);

(role === 'play' ? play() : publish()).catch((e) => { state.error = String(e); console.error(e); });

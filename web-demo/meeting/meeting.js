// Meeting room: joins a LiveSwarm room over the WebSocket protocol of docs/ROOMS.md, publishes the camera and
// microphone (or a test pattern) on one PeerConnection and receives everyone else on another, where the page
// always offers and m-lines are never recycled. window.meetingStats() and window.meeting are for people at the
// console and for test drivers (README.md).
'use strict';

const q = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
/** Milliseconds since navigation start: the time base of every `t` and `...Ms` the page reports. */
const now = () => Math.round(performance.now());

const opts = {
  room: q.get('room') || '',
  name: q.get('name') || '',
  token: q.get('token') || null,
  source: q.get('source') === 'test' ? 'test' : 'camera',
  color: /^[0-9a-f]{6}$/i.test(q.get('color') || '') ? q.get('color').toLowerCase()
    : Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0'),
  tone: Number(q.get('tone')) > 0 ? Number(q.get('tone')) : 440,
  clock: q.get('clock') === '1' && !!window.GlassClock,
  audioProcessing: q.get('audioProcessing') !== '0',
  // With source=test: the tone sounds for ON seconds, then is silent for OFF seconds, over and over (speak=ON,OFF).
  speak: /^\d+(\.\d+)?,\d+(\.\d+)?$/.test(q.get('speak') || '') ? q.get('speak').split(',').map(Number) : null,
  // relay=1: TURN relays only (iceTransportPolicy 'relay'); turn=udp|tcp|tls: keep that TURN transport only.
  relay: q.get('relay') === '1',
  turn: ['udp', 'tcp', 'tls'].includes(q.get('turn')) ? q.get('turn') : null,
};

const S = {
  state: 'idle', you: null, joinMs: null, joinedAt: null, joinedMs: null, codecs: null, canPublish: null,
  pingMs: null, errors: [], events: [], resumes: 0, rejoins: 0, iceRestarts: 0, sockets: 0, speaker: null,
  voice: [], // when this page's own microphone started and stopped carrying sound: [{at: epoch ms, speaking}]
  // Each PeerConnection's selected local candidate: {type: host|srflx|relay, relayProtocol: udp|tcp|tls|null}.
  paths: { publish: null, subscribe: null },
};
// The seat's resume token (docs/ROOMS.md, Resuming), kept in sessionStorage so that a reload resumes too.
const RESUME_KEY = `liveswarm.resume.${opts.room}`;
let resumeToken = null;
// The WebSocket's liveness: the page pings every 2 s and gives the socket up after 5 s without a message.
const conn = { attempt: 0, lastHeard: 0, pinger: null, watchdog: null, retry: null, probe: null };
const remotes = new Map();   // participant id -> remote participant (its tile, tracks, figures)
const receivers = [];        // every remote track ever asked for, in order: its transceiver lives as long as the PC
const recByTrack = new Map(); // track id -> receiver record, live tracks only
const local = { media: null, audio: null, video: null, screen: null, muted: { audio: false, video: false } };
const pub = { pc: null, stats: {}, busy: false };
// `wanted` counts changes asked for, `done` the changes the last applied answer covers: one offer in flight.
const sub = { pc: null, scheduled: false, busy: false, wanted: 0, done: 0, failures: 0, retry: null, midToRec: new Map(),
  restart: false };
const pending = {};          // 'publish' | 'subscribe' -> the answer awaited
let ws = null;
let iceServers = [];
let joinTargets = null;      // participants present at join with their video on
let statsTimer = null;
let audioCtx = null;
let localMedia = null;

// ---------------------------------------------------------------------------------------------------- reporting

function log(type, fields) {
  S.events.push(Object.assign({ t: now(), type }, fields));
  if (S.events.length > 2000) S.events.splice(0, S.events.length - 2000);
}

function noteError(code, message, request) {
  S.errors.push({ t: now(), code, message, request: request || null });
  if (S.errors.length > 200) S.errors.shift();
  $('errors').textContent = S.errors.slice(-4).map((e) => `${e.code}: ${e.message}`).join('\n');
}

function setState(state) {
  S.state = state;
  log('state', { dir: 'local', state });
  renderStatus();
}

function fmtS(ms) { return ms == null ? '–' : `${(ms / 1000).toFixed(2)} s`; }

function renderStatus() {
  const el = $('status');
  const others = [...remotes.values()].filter((p) => !p.isScreen).length;
  const texts = {
    idle: 'Choose a room and a name.',
    connecting: 'Connecting…',
    joining: `Joining ${opts.room}…`,
    reconnecting: `Reconnecting to ${opts.room}…`,
    removed: 'An operator removed you from the room.',
    replaced: 'You joined this room from somewhere else: this page is no longer in it.',
    joined: `In ${opts.room} as ${opts.name}, ${others} other${others === 1 ? '' : 's'}` +
      (S.codecs ? `, ${S.codecs.video}` : '') +
      (S.joinMs != null ? `, everyone seen ${fmtS(S.joinMs)} after opening the page` : ', waiting for video…') +
      (S.pingMs != null ? `, signalling ${S.pingMs} ms` : '') + (S.canPublish === false ? ' (receive only)' : ''),
    failed: `Could not join: ${S.errors.length ? S.errors[S.errors.length - 1].message : 'refused'}`,
    left: 'You left the room.',
    closed: `Disconnected: ${S.errors.length ? S.errors[S.errors.length - 1].message : ''}`,
  };
  el.textContent = texts[S.state] || S.state;
  el.classList.toggle('bad', ['failed', 'closed', 'removed', 'replaced', 'reconnecting'].includes(S.state));
  const inRoom = S.state === 'joined';
  $('leave').disabled = !inRoom;
  for (const [button, kind, off, on] of [['cam', 'video', 'Stop camera', 'Start camera'], ['mic', 'audio', 'Mute microphone', 'Unmute microphone']]) {
    const b = $(button);
    b.disabled = !inRoom || !local[kind];
    b.textContent = local.muted[kind] ? on : off;
    b.setAttribute('aria-pressed', String(local.muted[kind]));
  }
  $('share').disabled = !inRoom || !pub.pc || S.canPublish === false || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
  $('share').textContent = local.screen ? 'Stop sharing' : 'Share screen';
  $('share').setAttribute('aria-pressed', String(!!local.screen));
}

// ---------------------------------------------------------------------------------------------------- signalling

function send(msg) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(msg));
  if (msg.type !== 'ping') log(msg.type, Object.assign({ dir: 'out' }, loggable(msg)));
  return true;
}

/** A message as the event log keeps it: no SDP (its size only), no credentials. */
function loggable(msg) {
  const o = Object.assign({}, msg);
  delete o.type;
  delete o.token;
  delete o.resumeToken;
  delete o.iceServers;
  if (typeof o.sdp === 'string') o.sdp = `${o.sdp.length} bytes`;
  return o;
}

function sendJoin() {
  setState('joining');
  const join = { type: 'join', version: 1, room: opts.room, name: opts.name };
  if (opts.token) join.token = opts.token;
  send(join);
}

function storedToken() {
  try {
    const v = JSON.parse(sessionStorage.getItem(RESUME_KEY) || 'null');
    return v && v.name === opts.name && typeof v.token === 'string' ? v.token : null;
  } catch { return null; }
}

function storeToken(token) {
  resumeToken = token;
  try {
    if (token) sessionStorage.setItem(RESUME_KEY, JSON.stringify({ name: opts.name, token }));
    else sessionStorage.removeItem(RESUME_KEY);
  } catch { /* storage off: a reload joins as someone new */ }
}

/** Opens the WebSocket; once open, resumes the seat if there is one (a lost connection, a reload), else joins. */
function connect() {
  clearTimeout(conn.retry);
  if (S.state !== 'reconnecting') setState('connecting');
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws = socket;
  S.sockets++;
  socket.onopen = () => {
    if (ws !== socket) return;
    if (S.state === 'left') { socket.close(1000); return; }
    conn.lastHeard = now();
    const token = resumeToken || storedToken();
    if (token) {
      send({ type: 'resume', version: 1, token });
    } else {
      sendJoin();
    }
    startLiveness();
  };
  socket.onmessage = (e) => {
    if (ws !== socket) return;
    conn.lastHeard = now();
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    if (msg.type !== 'pong') log(msg.type, Object.assign({ dir: 'in' }, loggable(msg)));
    try { handle(msg); } catch (err) { console.error(err); noteError('page', `${msg.type}: ${err.message}`); }
  };
  socket.onclose = (e) => { if (ws === socket) socketEnded(e.code, e.reason); };
}

/** The server closed the socket, or the page gave it up. Some closes are final; otherwise the page reconnects. */
function socketEnded(code, reason) {
  log('wsClose', { dir: 'local', code, reason });
  ws = null;
  stopLiveness();
  for (const request of Object.keys(pending)) pending[request].fail('the connection closed');
  if (['left', 'failed', 'removed', 'replaced', 'closed'].includes(S.state)) return;
  const final = {
    4001: ['removed', 'an operator removed you from the room'],
    4002: ['closed', 'the room continues on another connection (another tab?)'],
    4003: ['replaced', 'you joined this room from somewhere else'],
    1008: ['closed', 'closed by the server (too many messages)'],
    1009: ['closed', 'closed by the server (message too large)'],
  }[code];
  if (final) {
    if (code !== 4002) storeToken(null);
    noteError(final[0], final[1]);
    setState(final[0]);
    cleanup();
    return;
  }
  if (!resumeToken && !storedToken()) {
    // Never got a seat: nothing to come back to.
    noteError('closed', `connection closed (${code}${reason ? ' ' + reason : ''})`);
    setState('closed');
    cleanup();
    return;
  }
  // The seat is held for the grace period (20 s by default): come back quickly, at most a second apart.
  setState('reconnecting');
  const delay = conn.attempt === 0 ? 0 : Math.min(1000, 125 * 2 ** conn.attempt);
  conn.attempt++;
  conn.retry = setTimeout(connect, delay);
}

function startLiveness() {
  stopLiveness();
  conn.pinger = setInterval(() => send({ type: 'ping', sent: performance.now() }), 2000);
  conn.watchdog = setInterval(() => { if (now() - conn.lastHeard > 5000) dropSocket('no message for 5 s'); }, 500);
}

function stopLiveness() {
  clearInterval(conn.pinger);
  clearInterval(conn.watchdog);
  clearTimeout(conn.probe);
}

/** Gives up a socket that seems dead, without waiting for its closing handshake. Its close code (4004) is not a
 * clean close, so if the server still sees the connection it holds the seat. */
function dropSocket(why) {
  const socket = ws;
  if (!socket) return;
  socket.onopen = socket.onmessage = socket.onclose = null;
  try { socket.close(4004, 'reconnecting'); } catch { /* already closing */ }
  socketEnded(1006, why);
}

/** The media path broke (ICE disconnected): the network may have changed under the WebSocket too. Ask the server
 * at once, and give the socket up if nothing comes back within a second. */
function probeSocket() {
  if (!ws || ws.readyState !== WebSocket.OPEN || conn.probe) return;
  const asked = now();
  send({ type: 'ping', sent: performance.now(), probe: true });
  conn.probe = setTimeout(() => { conn.probe = null; if (conn.lastHeard < asked) dropSocket('no answer within 1 s after the media path broke'); }, 1000);
}

function handle(msg) {
  switch (msg.type) {
    case 'joined': onJoined(msg); break;
    case 'resumed': onResumed(msg); break;
    case 'publishAnswer': if (pending.publish) pending.publish.resolve(msg); break;
    case 'subscribeAnswer': if (pending.subscribe) pending.subscribe.resolve(msg); break;
    case 'participantJoined': if (msg.participant) addRemote(msg.participant); break;
    case 'participantLeft': removeRemote(msg.participant); break;
    case 'trackPublished': if (msg.track) addTrack(msg.participant, msg.track); break;
    case 'trackUnpublished': endTrack(msg.track); break;
    case 'trackMuted': onTrackMuted(msg.track, !!msg.muted); break;
    case 'activeSpeaker': setSpeaker(msg.participant || null); break;
    case 'pong': if (typeof msg.sent === 'number') { S.pingMs = Math.round(performance.now() - msg.sent); renderStatus(); } break;
    case 'error': onError(msg); break;
    default: break;
  }
}

function onError(msg) {
  noteError(msg.code || 'error', msg.message || msg.code || 'error', msg.request);
  if (msg.request === 'resume') {
    storeToken(null);
    if (msg.code === 'removed') return; // the server closes with 4001 next
    // The seat was given up (away longer than the grace, or the server restarted): join again as someone new, on
    // this connection, with new PeerConnections.
    S.rejoins++;
    resetRoom();
    sendJoin();
    return;
  }
  if (S.state === 'joining') {
    // Not in the room (bad token, full room...): the connection stays open but is of no more use.
    setState('failed');
    ws.close(1000);
    cleanup();
    showForm();
    return;
  }
  const p = msg.request && pending[msg.request];
  if (!p) return;
  // A track in a codec the offer lacks is answered `inactive`: the answer still comes. Any other error is instead
  // of the answer.
  if (msg.request === 'subscribe' && msg.code === 'codecUnsupported') return;
  p.fail(`${msg.code}: ${msg.message}`);
}

/** The answer to the offer just sent: resolves with the server's message, or fails on an error for that request. */
function expectAnswer(request) {
  return new Promise((resolve, reject) => {
    const entry = {};
    const done = () => { clearTimeout(entry.timer); if (pending[request] === entry) delete pending[request]; };
    entry.resolve = (m) => { done(); resolve(m); };
    entry.fail = (why) => { done(); reject(new Error(why)); };
    entry.timer = setTimeout(() => entry.fail(`no answer to ${request} in 15 s`), 15000);
    pending[request] = entry;
  });
}

function onJoined(msg) {
  storeToken(typeof msg.resumeToken === 'string' ? msg.resumeToken : null);
  enterRoom(msg);
}

/** The seat is back (`resumed`). A page that kept its PeerConnections brings its view up to date from the snapshot
 * and restarts ICE where the media path broke; a reloaded page starts its PeerConnections afresh. */
function onResumed(msg) {
  conn.attempt = 0;
  S.resumes++;
  if (typeof msg.resumeToken === 'string') storeToken(msg.resumeToken);
  if (!sub.pc) { enterRoom(msg); return; }
  setState('joined');
  setSpeaker(msg.activeSpeaker || null);
  const present = new Map((msg.participants || []).map((p) => [p.id, p]));
  for (const id of [...remotes.keys()]) if (!present.has(id.split('#')[0])) removeRemote(id);
  for (const info of present.values()) {
    addRemote(info);
    const listed = new Set((info.tracks || []).map((t) => t.id));
    for (const p of [remotes.get(info.id), remotes.get(`${info.id}#screen`)]) {
      if (p) for (const r of [...p.tracks.values()]) if (!listed.has(r.id)) endTrack(r.id);
    }
    for (const t of info.tracks || []) if (recByTrack.has(t.id) && recByTrack.get(t.id).muted !== !!t.muted) onTrackMuted(t.id, !!t.muted);
  }
  // An offer that was in flight when the socket died got no answer: offer again.
  if (pub.pc && (pub.pc.signalingState !== 'stable' || iceBroken(pub.pc))) renegotiatePublish();
  if (iceBroken(sub.pc)) sub.restart = true;
  if (sub.pc.signalingState !== 'stable') sub.wanted++;
  changeSubscriptions();
}

/** The room's active speaker (found by the server from the audio levels in the publishers' packets) is outlined. */
function setSpeaker(id) {
  S.speaker = id;
  for (const p of remotes.values()) p.el.tile.classList.toggle('speaking', p.id === id);
  if (mine) mine.tile.classList.toggle('speaking', !!(S.you && id === S.you.id));
}

/** Notes when the page's own microphone carries sound and when it stops (over -45 dBFS, held 150 ms): the other
 * side of the active speaker measurement. */
function watchOwnVoice(media) {
  const track = media.getAudioTracks()[0];
  if (!track) return;
  const ctx = audioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let speaking = false;
  let since = null;
  setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const loud = 10 * Math.log10(sum / buf.length + 1e-12) > -45;
    if (loud === speaking) { since = null; return; }
    since = since || Date.now();
    if (Date.now() - since < 150) return;
    speaking = loud;
    S.voice.push({ at: since, speaking });
    if (S.voice.length > 400) S.voice.shift();
    since = null;
  }, 25);
}

function iceBroken(pc) { return !!pc && ['disconnected', 'failed'].includes(pc.iceConnectionState); }

function enterRoom(msg) {
  conn.attempt = 0;
  S.you = msg.you || {};
  S.joinedAt = Date.now();
  S.joinedMs = now();
  S.codecs = msg.codecs || null;
  S.canPublish = S.you.canPublish !== false;
  iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
  sub.pc = new RTCPeerConnection(pcConfig());
  sub.pc.ontrack = (e) => {
    const r = sub.midToRec.get(e.transceiver.mid);
    if (r && !r.ended) attach(r, e.track);
  };
  watchPC(sub.pc, 'subscribe');
  setState('joined');
  setSpeaker(msg.activeSpeaker || null);
  clearInterval(statsTimer);
  for (const p of msg.participants || []) addRemote(p);
  // The page has joined when everyone whose camera was on at join has shown a frame.
  joinTargets = new Set([...remotes.values()].filter((p) => { const v = videoRec(p); return v && !v.muted; }).map((p) => p.id));
  checkJoin();
  statsTimer = setInterval(tick, 1000);
  if (S.canPublish) publish().catch((e) => { console.error(e); noteError('publish', e.message, 'publish'); });
  else if (localMedia) localMedia.then((m) => m && m.getTracks().forEach((t) => t.stop()), () => {});
  changeSubscriptions();
}

function pcConfig() {
  // The server's STUN and TURN (credentials minted for this connection), narrowed by turn=udp|tcp|tls.
  const servers = opts.turn
    ? iceServers.map((s) => Object.assign({}, s, { urls: s.urls.filter((u) => u.startsWith('stun:') || turnTransport(u) === opts.turn) }))
      .filter((s) => s.urls.length)
    : iceServers;
  return { iceServers: servers, iceTransportPolicy: opts.relay ? 'relay' : 'all', bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
}

/** How a TURN URL reaches its server: 'tls' (turns:), 'tcp' (transport=tcp) or 'udp'. */
function turnTransport(url) {
  if (url.startsWith('turns:')) return 'tls';
  return /[?&]transport=tcp\b/.test(url) ? 'tcp' : 'udp';
}

/** The selected pair's local candidate in a stats report: how this PeerConnection reaches the server. */
function selectedPath(report) {
  let pair = null;
  report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair; });
  const local = pair && report.get(pair.localCandidateId);
  return local ? { type: local.candidateType, relayProtocol: local.relayProtocol || null } : null;
}

function watchPC(pc, label) {
  pc.onconnectionstatechange = () => {
    log('connectionState', { dir: 'local', pc: label, state: pc.connectionState });
    if (pc.connectionState === 'failed') noteError('media', `the ${label} connection failed`);
  };
  pc.oniceconnectionstatechange = () => {
    log('iceConnectionState', { dir: 'local', pc: label, state: pc.iceConnectionState });
    if (!iceBroken(pc)) return;
    // The path broke: check the signalling, and restart ICE over it (now if it is up, else after the resume).
    probeSocket();
    if (S.state !== 'joined') return;
    if (pc === pub.pc) renegotiatePublish();
    else if (pc === sub.pc) { sub.restart = true; changeSubscriptions(); }
  };
}

/** What each of the publish PeerConnection's sending mids carries (docs/ROOMS.md, `publish`). */
function publishSources() {
  const sources = {};
  for (const [own, source] of [[local.audio, 'microphone'], [local.video, 'camera'], [local.screen, 'screen']]) {
    if (own && own.transceiver.mid != null) sources[own.transceiver.mid] = source;
  }
  return sources;
}

/** Your own tracks' ids, from a publish answer. */
function noteTrackIds(answer) {
  for (const t of answer.tracks || []) {
    const own = [local.audio, local.video, local.screen].find((o) => o && o.transceiver.mid === String(t.mid));
    if (own) own.id = t.id;
  }
}

/** Screen sharing: a second video track on the publish PeerConnection (getDisplayMedia needs a click), sent as
 * `screen`; stopping it sets its transceiver inactive, which ends the track for the others. */
async function share(on) {
  if (on && !local.screen && pub.pc && S.state === 'joined') {
    const media = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    const track = media.getVideoTracks()[0];
    if (!pub.pc || S.state !== 'joined') { track.stop(); return { sharing: false }; }
    const transceiver = pub.pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    local.screen = { kind: 'video', track, transceiver, sender: transceiver.sender, id: null };
    // The browser's own "Stop sharing" ends the track.
    track.onended = () => { share(false).catch((e) => noteError('page', e.message)); };
    log('share', { dir: 'local', on: true, label: track.label });
    renderStatus();
    await renegotiatePublish();
  } else if (!on && local.screen) {
    const own = local.screen;
    local.screen = null;
    own.track.onended = null;
    own.track.stop();
    await own.sender.replaceTrack(null);
    own.transceiver.direction = 'inactive';
    log('share', { dir: 'local', on: false });
    renderStatus();
    await renegotiatePublish();
  }
  return { sharing: !!local.screen, track: local.screen ? local.screen.id : null };
}

/** A new offer on the publish PeerConnection: an ICE restart when its path broke, or again after an offer that
 * got no answer. The transceivers, and so the tracks, stay the same. */
async function renegotiatePublish(forceRestart = false) {
  const pc = pub.pc;
  if (!pc || !local.audio && !local.video) return;
  if (pub.busy) { pub.again = true; return; }
  pub.busy = true;
  pub.again = false;
  const iceRestart = forceRestart || iceBroken(pc);
  try {
    if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    const answered = expectAnswer('publish');
    if (!send({ type: 'publish', sdp: pc.localDescription.sdp, sources: publishSources() })) throw new Error('not connected');
    const answer = await answered;
    if (pc !== pub.pc || pc.signalingState === 'closed') return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    noteTrackIds(answer);
    if (iceRestart) { S.iceRestarts++; log('iceRestart', { dir: 'local', pc: 'publish' }); }
  } catch (e) {
    if (pc.signalingState !== 'closed') noteError('publish', e.message, 'publish');
  } finally {
    pub.busy = false;
  }
  if (pub.again && S.state === 'joined') renegotiatePublish();
}

// ---------------------------------------------------------------------------------------------------- publishing

/** Camera and microphone, or with ?source=test a coloured canvas and a tone. Starts before the join, to save time. */
async function getLocalMedia() {
  if (opts.source === 'test') return testPattern();
  const ap = opts.audioProcessing;
  const audio = { echoCancellation: ap, noiseSuppression: ap, autoGainControl: ap };
  const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (e) {
    // One of the two may be missing or refused: publish what there is.
    for (const c of [{ audio }, { video }]) {
      try {
        const m = await navigator.mediaDevices.getUserMedia(c);
        noteError('media', `${e.name}: ${e.message}; publishing the ${c.audio ? 'microphone' : 'camera'} only`);
        return m;
      } catch { /* try the other */ }
    }
    throw e;
  }
}

function testPattern() {
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 240;
  const g = canvas.getContext('2d');
  const [r, gr, b] = [0, 2, 4].map((i) => parseInt(opts.color.slice(i, i + 2), 16));
  const ink = 0.299 * r + 0.587 * gr + 0.114 * b > 140 ? '#000' : '#fff';
  let n = 0;
  const draw = () => {
    g.fillStyle = `#${opts.color}`;
    g.fillRect(0, 0, canvas.width, canvas.height);
    // The counter moves along the bottom, away from the centre whose colour receivers measure.
    g.fillStyle = ink;
    g.font = 'bold 18px monospace';
    g.fillText(String(n), (n * 3) % (canvas.width - 70) + 4, canvas.height - 10);
    n++;
    if (opts.clock) drawClock(g, canvas.width);
  };
  draw();
  setInterval(draw, 1000 / 15);
  const media = canvas.captureStream(15);
  const ctx = audioContext();
  const osc = ctx.createOscillator();
  osc.frequency.value = opts.tone;
  const dest = ctx.createMediaStreamDestination();
  const gain = ctx.createGain();
  osc.connect(gain).connect(dest);
  osc.start();
  if (opts.speak) {
    const [on, off] = opts.speak;
    const started = performance.now();
    setInterval(() => {
      const phase = ((performance.now() - started) / 1000) % (on + off);
      gain.gain.value = phase < on ? 1 : 0;
    }, 20);
  }
  media.addTrack(dest.stream.getAudioTracks()[0]);
  return media;
}

/** The glass clock strip (tools/glass-clock/README.md): 2 rows of 32 cells across the top, white = 1. */
function drawClock(g, width) {
  const cols = GlassClock.COLS;
  const cell = width / cols;
  const bits = GlassClock.encodeBits(Date.now());
  for (let k = 0; k < bits.length; k++) {
    g.fillStyle = bits[k] ? '#fff' : '#000';
    g.fillRect((k % cols) * cell, Math.floor(k / cols) * cell, cell, cell);
  }
}

async function publish() {
  const media = await localMedia.catch(() => null);
  if (!media || S.state !== 'joined') return;
  const pc = new RTCPeerConnection(pcConfig());
  pub.pc = pc;
  watchPC(pc, 'publish');
  for (const kind of ['audio', 'video']) {
    const track = media.getTracks().find((t) => t.kind === kind);
    if (!track) continue;
    const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    local[kind] = { kind, track, transceiver, sender: transceiver.sender, id: null };
    if (local.muted[kind]) await transceiver.sender.replaceTrack(null);
  }
  renderStatus();
  pub.busy = true;
  let answer;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const answered = expectAnswer('publish');
    send({ type: 'publish', sdp: pc.localDescription.sdp, sources: publishSources() });
    answer = await answered;
    if (pc !== pub.pc) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  } finally {
    pub.busy = false;
  }
  noteTrackIds(answer);
  // Muted before the server knew the tracks' ids: tell it now.
  for (const own of [local.audio, local.video]) if (own && own.id && local.muted[own.kind]) send({ type: 'mute', track: own.id, muted: true });
  renderSelf();
}

/** Muting stops the packets (replaceTrack(null)); `track.enabled = false` would keep sending black and silence. */
async function mute(kind, muted) {
  if (kind !== 'audio' && kind !== 'video') throw new Error(`kind is 'audio' or 'video', not ${kind}`);
  muted = !!muted;
  local.muted[kind] = muted;
  const own = local[kind];
  if (own) {
    // Muting: the others show the placeholder before the last frame arrives; unmuting: after the first new one is sent.
    if (muted && own.id) send({ type: 'mute', track: own.id, muted });
    await own.sender.replaceTrack(muted ? null : own.track);
    if (!muted && own.id) send({ type: 'mute', track: own.id, muted });
  }
  log('localMute', { dir: 'local', kind, muted });
  renderSelf();
  renderStatus();
  return { kind, muted, track: own ? own.id : null };
}

// ---------------------------------------------------------------------------------------------------- subscribing

function addRemote(info) {
  if (!info || !info.id || (S.you && info.id === S.you.id)) return;
  let p = remotes.get(info.id);
  if (!p) {
    p = newRemote(info.id, info.name || info.id);
    remotes.set(p.id, p);
    renderStatus();
  } else if (info.name) {
    p.name = info.name;
  }
  for (const t of info.tracks || []) addTrack(p.id, t);
  renderTile(p);
}

/** A participant's screen share has a tile of its own, "NAME (screen)", whose id is `PARTICIPANT#screen`. */
function screenRemote(participant) {
  const id = `${participant}#screen`;
  let p = remotes.get(id);
  if (!p) {
    const owner = remotes.get(participant);
    p = newRemote(id, `${owner ? owner.name : participant} (screen)`);
    Object.assign(p, { isScreen: true, of: participant });
    remotes.set(id, p);
  }
  return p;
}

function addTrack(participant, t) {
  if (!t || !t.id || (S.you && participant === S.you.id)) return;
  if (!remotes.has(participant)) addRemote({ id: participant, name: participant, tracks: [] });
  const p = t.source === 'screen' ? screenRemote(participant) : remotes.get(participant);
  const known = recByTrack.get(t.id);
  if (known) { known.muted = !!t.muted; renderTile(p); return; }
  const r = { id: t.id, kind: t.kind === 'audio' ? 'audio' : 'video', participant: p.id, source: t.source || null,
    muted: !!t.muted, subscribed: true,
    ended: false, transceiver: null, track: null, audioEl: null, analyser: null, source: null, bins: null, wave: null,
    waveSum: null };
  receivers.push(r);
  recByTrack.set(r.id, r);
  p.tracks.set(r.id, r);
  renderTile(p);
  sub.wanted++;
  changeSubscriptions();
}

function endTrack(trackId) {
  const r = recByTrack.get(trackId);
  if (!r) return;
  retire(r);
  const p = remotes.get(r.participant);
  if (p) { p.tracks.delete(r.id); renderTile(p); checkJoin(); }
  if (p && p.isScreen && !p.tracks.size) removeRemote(p.id);
  changeSubscriptions();
}

/** A track has ended: stop playing it; its transceiver goes `inactive` in the next offer and is never used again. */
function retire(r) {
  r.ended = true;
  recByTrack.delete(r.id);
  if (r.audioEl) { r.audioEl.srcObject = null; r.audioEl.remove(); r.audioEl = null; }
  if (r.source) { r.source.disconnect(); r.source = null; r.analyser = null; }
  sub.wanted++;
}

function removeRemote(id) {
  const p = remotes.get(id);
  if (!p) return;
  if (!p.isScreen && remotes.has(`${id}#screen`)) removeRemote(`${id}#screen`);
  for (const r of p.tracks.values()) retire(r);
  if (p.clock) p.clock.stop();
  p.el.video.srcObject = null;
  p.el.tile.remove();
  remotes.delete(id);
  if (joinTargets) joinTargets.delete(id);
  checkJoin();
  renderStatus();
  changeSubscriptions();
}

function onTrackMuted(trackId, muted) {
  const r = recByTrack.get(trackId);
  if (!r) return;
  r.muted = muted;
  const p = remotes.get(r.participant);
  if (!p) return;
  // Unmuted: the placeholder stays until a new frame arrives, so the frozen last one is never shown.
  if (r.kind === 'video' && !muted && videoRec(p) === r) p.awaitingFrame = true;
  renderTile(p);
  checkJoin();
}

/** Asks for an offer on the subscribe PC; the changes made in the same task (a whole `joined`) share one. */
function changeSubscriptions() {
  if (sub.scheduled) return;
  sub.scheduled = true;
  queueMicrotask(() => {
    sub.scheduled = false;
    if (!sub.pc || S.state !== 'joined' || sub.busy || (sub.done >= sub.wanted && !sub.restart)) return;
    negotiateSubscribe().catch((e) => { console.error(e); sub.busy = false; });
  });
}

async function negotiateSubscribe() {
  sub.busy = true;
  const pc = sub.pc;
  const target = sub.wanted;
  const iceRestart = sub.restart;
  sub.restart = false;
  try {
    for (const r of receivers) {
      if (!r.ended && !r.transceiver) r.transceiver = pc.addTransceiver(r.kind, { direction: 'recvonly' });
      else if (r.ended && r.transceiver && r.transceiver.direction !== 'inactive') r.transceiver.direction = 'inactive';
    }
    if (!receivers.some((r) => r.transceiver)) { sub.done = target; return; }
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    const tracks = {};
    sub.midToRec.clear();
    for (const r of receivers) {
      if (r.ended || !r.transceiver) continue;
      if (r.transceiver.mid == null) throw new Error('a transceiver got no mid');
      tracks[r.transceiver.mid] = r.id;
      sub.midToRec.set(r.transceiver.mid, r);
    }
    const answered = expectAnswer('subscribe');
    send({ type: 'subscribe', sdp: pc.localDescription.sdp, tracks });
    const answer = await answered;
    if (pc.signalingState === 'closed') return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    // ontrack has attached the tracks now sent; this catches any it did not report.
    for (const r of sub.midToRec.values()) {
      if (!r.ended && !r.track && r.transceiver.currentDirection === 'recvonly') attach(r, r.transceiver.receiver.track);
    }
    sub.done = target;
    sub.failures = 0;
    if (iceRestart) { S.iceRestarts++; log('iceRestart', { dir: 'local', pc: 'subscribe' }); }
  } catch (e) {
    if (pc.signalingState === 'closed') return;
    console.error(e);
    noteError('subscribe', e.message, 'subscribe');
    if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
    if (iceRestart) sub.restart = true;
    // The transceivers stay; the next offer carries them again. Back off, and stop after a few failures in a row.
    sub.failures++;
    if (sub.failures < 5) { clearTimeout(sub.retry); sub.retry = setTimeout(changeSubscriptions, 1000 * sub.failures); }
    return;
  } finally {
    sub.busy = false;
  }
  changeSubscriptions();
}

function attach(r, track) {
  if (r.track === track) return;
  r.track = track;
  const p = remotes.get(r.participant);
  if (!p) return;
  if (r.kind === 'audio') {
    // One playing element per remote audio track: it is what you hear, and Chromium's Web Audio needs it to get
    // samples of a remote track at all.
    r.audioEl = document.createElement('audio');
    r.audioEl.autoplay = true;
    r.audioEl.srcObject = new MediaStream([track]);
    p.el.tile.appendChild(r.audioEl);
    playOrAsk(r.audioEl);
    const ctx = audioContext();
    r.source = ctx.createMediaStreamSource(new MediaStream([track]));
    r.analyser = ctx.createAnalyser();
    r.analyser.fftSize = 8192;
    r.source.connect(r.analyser);
    r.bins = new Float32Array(r.analyser.frequencyBinCount);
    r.wave = new Float32Array(r.analyser.fftSize);
  }
  renderTile(p);
}

function playOrAsk(el) {
  el.play().catch(() => { $('sound').hidden = false; });
}

function audioContext() {
  if (!audioCtx) audioCtx = new AudioContext();
  // Without a gesture Chromium keeps it suspended unless launched with --autoplay-policy=no-user-gesture-required.
  audioCtx.resume().catch(() => {});
  return audioCtx;
}

// ---------------------------------------------------------------------------------------------------- tiles

function makeTile(label) {
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.innerHTML = '<video autoplay playsinline muted></video><div class="ph"><b></b><span></span></div>' +
    '<div class="ov"></div><div class="label"><b></b><span class="badge cam" hidden>camera off</span>' +
    '<span class="badge mic" hidden>mic off</span></div>';
  const el = {
    tile, video: tile.querySelector('video'), ph: tile.querySelector('.ph'), phName: tile.querySelector('.ph b'),
    phWhy: tile.querySelector('.ph span'), ov: tile.querySelector('.ov'), label: tile.querySelector('.label b'),
    cam: tile.querySelector('.badge.cam'), mic: tile.querySelector('.badge.mic'), spark: document.createElement('canvas'),
  };
  el.video.muted = true; // remote sound plays through one <audio> per track
  el.spark.width = 70;
  el.spark.height = 16;
  el.label.textContent = label;
  el.phName.textContent = label;
  $('tiles').appendChild(tile);
  return el;
}

function newRemote(id, name) {
  const p = {
    id, name, tracks: new Map(), el: makeTile(name), shown: null, awaitingFrame: true, firstFrameMs: null,
    history: [], historyFor: null, lastJb: null, clock: null,
    stats: { framesDecoded: null, fps: null, fps1s: null, freezeCount: null, totalFreezesDuration: null, delayMs: null,
      jitterBufferMs: null, packetsReceived: null, audioPacketsReceived: null, seenColor: null, heardHz: null },
  };
  const video = p.el.video;
  if (typeof video.requestVideoFrameCallback === 'function') {
    const onFrame = (t, md) => {
      video.requestVideoFrameCallback(onFrame);
      if (!p.shown) return;
      if (p.firstFrameMs == null) {
        p.firstFrameMs = Math.round(md && typeof md.expectedDisplayTime === 'number' ? md.expectedDisplayTime : t);
        log('firstFrame', { dir: 'local', participant: p.id, ms: p.firstFrameMs });
        checkJoin();
      }
      if (p.awaitingFrame) { p.awaitingFrame = false; renderTile(p); }
    };
    video.requestVideoFrameCallback(onFrame);
  } else {
    video.addEventListener('loadeddata', () => {
      if (p.firstFrameMs == null) { p.firstFrameMs = now(); checkJoin(); }
      p.awaitingFrame = false;
      renderTile(p);
    });
  }
  if (opts.clock) p.clock = GlassClock.attach(video, { windowSeconds: 5 });
  return p;
}

/** The video a tile shows: the participant's first live video track (the audio: its first audio track). */
function videoRec(p) { for (const r of p.tracks.values()) if (r.kind === 'video' && !r.ended) return r; return null; }
function audioRec(p) { for (const r of p.tracks.values()) if (r.kind === 'audio' && !r.ended) return r; return null; }

function renderTile(p) {
  const v = videoRec(p);
  const a = audioRec(p);
  const track = v && v.track ? v.track : null;
  if (p.shown !== track) {
    p.shown = track;
    p.awaitingFrame = true;
    p.history = [];
    p.lastJb = null;
    if (p.clock) p.clock.reset();
    p.el.video.srcObject = track ? new MediaStream([track]) : null;
    if (track) p.el.video.play().catch(() => {});
  }
  let why = null;
  if (!v) why = 'no camera';
  else if (v.muted) why = 'camera off';
  else if (!v.subscribed) why = 'video paused';
  else if (!track || p.awaitingFrame) why = 'connecting…';
  p.el.ph.hidden = why === null;
  p.el.phWhy.textContent = why || '';
  p.el.phName.textContent = p.name;
  p.el.label.textContent = p.name;
  p.el.cam.hidden = !(v && v.muted);
  p.el.mic.hidden = !(a && a.muted);
  if (why !== null) p.stats.seenColor = null;
}

/** Live means the tile shows frames that are arriving now (not a placeholder, not the last frame before a mute). */
function isLive(p) { const v = videoRec(p); return !!(v && !v.muted && v.subscribed && p.shown && !p.awaitingFrame); }

function checkJoin() {
  if (S.joinMs != null || !joinTargets) return;
  let last = S.joinedMs;
  for (const id of joinTargets) {
    const p = remotes.get(id);
    const v = p ? videoRec(p) : null;
    if (!v || v.muted) { joinTargets.delete(id); continue; } // left, or turned the camera off: nothing to wait for
    if (p.firstFrameMs == null) return;
    last = Math.max(last, p.firstFrameMs);
  }
  S.joinMs = last;
  log('joinComplete', { dir: 'local', ms: last });
  renderStatus();
  renderSelf();
}

let mine = null; // your own tile

function renderSelf() {
  if (!mine) return;
  const hasVideo = local.media && local.media.getVideoTracks().length;
  let why = null;
  if (S.state === 'left' || S.state === 'closed' || S.state === 'failed') why = 'not in the room';
  else if (S.canPublish === false) why = 'receive only';
  else if (!hasVideo) why = local.media ? 'no camera' : 'starting the camera…';
  else if (local.muted.video) why = 'camera off';
  mine.ph.hidden = why === null;
  mine.phWhy.textContent = why || '';
  mine.cam.hidden = !local.muted.video;
  mine.mic.hidden = !local.muted.audio;
  const s = pub.stats;
  const lines = [];
  if (S.state === 'joined') {
    if (s.fps != null && !local.muted.video) lines.push(`sending ${Math.round(s.fps)} fps, ${s.kbps ?? '–'} kbit/s`);
    lines.push(`everyone seen after ${fmtS(S.joinMs)}`);
  }
  mine.ov.hidden = !lines.length;
  mine.ov.textContent = '';
  for (const l of lines) mine.ov.appendChild(Object.assign(document.createElement('div'), { textContent: l }));
}

function renderOverlay(p) {
  const s = p.stats;
  const ov = p.el.ov;
  ov.textContent = '';
  const line = (text, cls) => ov.appendChild(Object.assign(document.createElement('div'), { textContent: text, className: cls || '' }));
  line(s.fps1s == null ? '– fps' : `${Math.round(s.fps1s)} fps`);
  if (p.clock && p.clock.stats().window.medianMs != null) line(`glass to glass ${Math.round(p.clock.stats().window.medianMs)} ms`);
  if (s.delayMs != null) line(`≈ ${s.delayMs} ms delay (estimate)`, 'est');
  if (s.freezeCount != null) line(`${s.freezeCount} freeze${s.freezeCount === 1 ? '' : 's'}${s.freezeCount ? ` (${s.totalFreezesDuration.toFixed(1)} s)` : ''}`);
  line(`first frame ${fmtS(p.firstFrameMs)}`);
  drawSpark(p);
  ov.appendChild(p.el.spark);
}

/** Frames decoded in each of the last 10 seconds, one bar each (red under 10 fps). */
function drawSpark(p) {
  const c = p.el.spark;
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const h = p.history;
  const bars = [];
  for (let i = 1; i < h.length; i++) bars.push((h[i].frames - h[i - 1].frames) * 1000 / Math.max(1, h[i].t - h[i - 1].t));
  const top = Math.max(30, ...bars);
  const w = c.width / 10;
  bars.slice(-10).forEach((fps, i) => {
    g.fillStyle = fps < 10 ? '#e55' : '#6c6';
    const bh = Math.max(1, fps / top * c.height);
    g.fillRect(i * w, c.height - bh, w - 1, bh);
  });
}

// ---------------------------------------------------------------------------------------------------- figures

const probe = document.createElement('canvas');
probe.width = 16;
probe.height = 16;
const probeCtx = probe.getContext('2d', { willReadFrequently: true });

/** Average colour of the centre 40% (in each direction) of the picture the video element shows. */
function centreColour(video) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return null;
  probeCtx.drawImage(video, w * 0.3, h * 0.3, w * 0.4, h * 0.4, 0, 0, probe.width, probe.height);
  const d = probeCtx.getImageData(0, 0, probe.width, probe.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  return sum.map((x) => Math.round(x / (d.length / 4)));
}

/** The strongest frequency of one remote audio track, or null when even that is under -80 dB. */
function dominantHz(r) {
  if (!r || !r.analyser) return null;
  // When a track stops delivering audio (muted at the sender: no packets), Chromium stops feeding the analyser
  // rather than feeding it silence, and it keeps reporting its last window: the same samples twice mean silence.
  r.analyser.getFloatTimeDomainData(r.wave);
  let sum = 0;
  for (let i = 0; i < r.wave.length; i++) sum += r.wave[i] * (i + 1);
  const stale = sum === r.waveSum;
  r.waveSum = sum;
  if (stale) return null;
  r.analyser.getFloatFrequencyData(r.bins);
  let best = 1;
  for (let i = 2; i < r.bins.length; i++) if (r.bins[i] > r.bins[best]) best = i;
  if (!(r.bins[best] > -80)) return null;
  return Math.round(best * r.analyser.context.sampleRate / r.analyser.fftSize);
}

function inboundFor(r, byMid, byTrack) {
  if (!r || !r.transceiver) return null;
  return byMid.get(r.transceiver.mid) || byTrack.get(r.transceiver.receiver.track.id) || null;
}

async function tick() {
  if (S.state !== 'joined') return;
  try {
    await readSubscribeStats();
    await readPublishStats();
  } catch (e) {
    console.error(e);
  }
  try { measureTiles(); } catch (e) { console.error(e); }
}

function measureTiles() {
  for (const p of remotes.values()) {
    if (isLive(p)) {
      try { p.stats.seenColor = centreColour(p.el.video); } catch { p.stats.seenColor = null; }
    } else {
      p.stats.seenColor = null;
    }
    p.stats.heardHz = dominantHz(audioRec(p));
    renderOverlay(p);
  }
  renderSelf();
}

async function readSubscribeStats() {
  if (!sub.pc || sub.pc.signalingState === 'closed') return;
  const report = await sub.pc.getStats();
  const byMid = new Map();
  const byTrack = new Map();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      if (s.mid != null) byMid.set(String(s.mid), s);
      if (s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  S.paths.subscribe = selectedPath(report) || S.paths.subscribe;
  const rttMs = pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  for (const p of remotes.values()) {
    const vr = videoRec(p);
    const v = inboundFor(vr, byMid, byTrack);
    const a = inboundFor(audioRec(p), byMid, byTrack);
    const s = p.stats;
    s.audioPacketsReceived = a ? a.packetsReceived : null;
    if (!v) {
      Object.assign(s, { framesDecoded: null, fps: null, fps1s: null, freezeCount: null, totalFreezesDuration: null,
        delayMs: null, jitterBufferMs: null, packetsReceived: null });
      continue;
    }
    if (p.historyFor !== vr) { p.historyFor = vr; p.history = []; p.lastJb = null; }
    Object.assign(s, { framesDecoded: v.framesDecoded ?? 0, packetsReceived: v.packetsReceived ?? 0,
      freezeCount: v.freezeCount ?? 0, totalFreezesDuration: v.totalFreezesDuration ?? 0 });
    // Jitter buffer delay over the last second (all time until there are two readings).
    const count = v.jitterBufferEmittedCount || 0;
    const delay = v.jitterBufferDelay || 0;
    let jb = null;
    if (p.lastJb && count > p.lastJb.count) jb = (delay - p.lastJb.delay) / (count - p.lastJb.count) * 1000;
    else if (count) jb = delay / count * 1000;
    p.lastJb = { count, delay };
    s.jitterBufferMs = jb == null ? null : Math.round(jb);
    s.delayMs = jb == null ? null : Math.round(jb + (rttMs == null ? 0 : rttMs / 2));
    const h = p.history;
    h.push({ t: v.timestamp, frames: s.framesDecoded });
    while (h.length > 2 && h[h.length - 1].t - h[1].t >= 10000) h.shift();
    const first = h[0];
    const last = h[h.length - 1];
    const prev = h[h.length - 2];
    s.fps = h.length > 1 ? round1((last.frames - first.frames) * 1000 / (last.t - first.t)) : null;
    s.fps1s = h.length > 1 ? round1((last.frames - prev.frames) * 1000 / (last.t - prev.t)) : null;
  }
}

async function readPublishStats() {
  if (!pub.pc || pub.pc.signalingState === 'closed') return;
  const report = await pub.pc.getStats();
  S.paths.publish = selectedPath(report) || S.paths.publish;
  const s = pub.stats;
  report.forEach((r) => {
    if (r.type !== 'outbound-rtp') return;
    if (r.kind === 'audio') s.audioPacketsSent = r.packetsSent;
    if (r.kind !== 'video') return;
    if (s.videoAt && r.timestamp > s.videoAt) {
      s.kbps = Math.round((r.bytesSent - s.videoBytes) * 8 / (r.timestamp - s.videoAt));
      s.fps = round1((r.framesEncoded - s.framesEncoded) * 1000 / (r.timestamp - s.videoAt));
    }
    Object.assign(s, { videoAt: r.timestamp, videoBytes: r.bytesSent, framesEncoded: r.framesEncoded, packetsSent: r.packetsSent });
  });
}

function round1(x) { return Number.isFinite(x) ? Math.round(x * 10) / 10 : null; }

// ---------------------------------------------------------------------------------------------------- leaving

function cleanup() {
  stopLiveness();
  clearTimeout(conn.retry);
  resetRoom();
  if (local.media) local.media.getTracks().forEach((t) => t.stop());
  renderSelf();
}

/** Out of the room: the tiles go and both PeerConnections close. The camera stays, for a join that follows. */
function resetRoom() {
  clearInterval(statsTimer);
  clearTimeout(sub.retry);
  for (const id of [...remotes.keys()]) removeRemote(id);
  receivers.length = 0;
  for (const pc of [pub.pc, sub.pc]) if (pc) pc.close();
  pub.pc = null;
  sub.pc = null;
  Object.assign(sub, { busy: false, scheduled: false, restart: false, failures: 0 });
  sub.done = sub.wanted;
  sub.midToRec.clear();
  for (const kind of ['audio', 'video']) local[kind] = null;
  if (local.screen) { local.screen.track.onended = null; local.screen.track.stop(); local.screen = null; }
  for (const p of Object.keys(pending)) pending[p].fail('left the room');
}

function leave() {
  if (['joined', 'joining', 'connecting', 'reconnecting'].includes(S.state)) {
    const wasJoined = S.state === 'joined';
    const socket = ws;
    if (wasJoined) send({ type: 'leave' });
    storeToken(null);
    setState('left');
    cleanup();
    // The server closes the WebSocket after `leave`; otherwise a close with 1000 is itself a leave.
    if (socket && !wasJoined) socket.close(1000);
    else if (socket) setTimeout(() => { if (socket.readyState !== WebSocket.CLOSED) socket.close(1000); }, 3000);
  }
  return { state: S.state };
}

// ---------------------------------------------------------------------------------------------------- test hooks

function tileStats(p) {
  const v = videoRec(p);
  const a = audioRec(p);
  const s = p.stats;
  return {
    participant: p.id, name: p.name, source: p.isScreen ? 'screen' : 'camera', of: p.of || p.id,
    videoTrack: v ? v.id : null, audioTrack: a ? a.id : null,
    // The receivers' MediaStreamTrack ids: new ones would mean new transceivers (a renegotiation for this tile).
    videoReceiverTrack: v && v.track ? v.track.id : null, audioReceiverTrack: a && a.track ? a.track.id : null,
    videoMuted: v ? v.muted : null, audioMuted: a ? a.muted : null,
    videoSubscribed: v ? v.subscribed : null, audioSubscribed: a ? a.subscribed : null, placeholder: !p.el.ph.hidden,
    framesDecoded: s.framesDecoded, fps: s.fps, fps1s: s.fps1s, firstFrameMs: p.firstFrameMs,
    seenColor: s.seenColor, heardHz: s.heardHz, freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration,
    delayMs: s.delayMs, jitterBufferMs: s.jitterBufferMs, packetsReceived: s.packetsReceived,
    audioPacketsReceived: s.audioPacketsReceived,
    glassMs: p.clock ? p.clock.stats().window.medianMs : null,
    glassP95Ms: p.clock ? p.clock.stats().window.p95Ms : null, glassFrames: p.clock ? p.clock.stats().window.decoded : null,
    speaking: p.el.tile.classList.contains('speaking'),
  };
}

window.meetingStats = () => ({
  state: S.state, room: opts.room, name: opts.name, you: S.you ? S.you.id || null : null,
  joinMs: S.joinMs, joinedAt: S.joinedAt, joinedMs: S.joinedMs, codecs: S.codecs, canPublish: S.canPublish, pingMs: S.pingMs,
  resumes: S.resumes, rejoins: S.rejoins, iceRestarts: S.iceRestarts, sockets: S.sockets, speaker: S.speaker,
  voice: S.voice.slice(),
  ice: { publish: pub.pc ? pub.pc.iceConnectionState : null, subscribe: sub.pc ? sub.pc.iceConnectionState : null },
  paths: { publish: S.paths.publish, subscribe: S.paths.subscribe },
  errors: S.errors.map((e) => Object.assign({}, e)),
  events: S.events.map((e) => JSON.parse(JSON.stringify(e))),
  self: {
    source: opts.source, color: opts.source === 'test' ? opts.color : null, tone: opts.source === 'test' ? opts.tone : null,
    audioTrack: local.audio ? local.audio.id : null, videoTrack: local.video ? local.video.id : null,
    audioMuted: local.muted.audio, videoMuted: local.muted.video,
    sharing: !!local.screen, screenTrack: local.screen ? local.screen.id : null,
    audioContext: audioCtx ? audioCtx.state : null,
    framesEncoded: pub.stats.framesEncoded ?? null, fps: pub.stats.fps ?? null, kbps: pub.stats.kbps ?? null,
    packetsSent: pub.stats.packetsSent ?? null, audioPacketsSent: pub.stats.audioPacketsSent ?? null,
  },
  tiles: [...remotes.values()].map(tileStats),
});

window.meeting = {
  mute,
  leave,
  /** Starts (needs a user gesture: the Share screen button) or stops screen sharing. */
  share,
  /** Stops (false) or restarts (true, with a keyframe) the forwarding of one remote track to this page. */
  setSubscription(trackId, enabled) {
    enabled = !!enabled;
    const r = recByTrack.get(trackId);
    const msg = { type: 'subscription', track: trackId, enabled };
    const p = r ? remotes.get(r.participant) : null;
    if (p && r.kind === 'video' && p.el.video.clientWidth) {
      msg.width = p.el.video.clientWidth;
      msg.height = p.el.video.clientHeight;
    }
    const sent = send(msg);
    if (r) {
      r.subscribed = enabled;
      if (p) {
        if (enabled && r.kind === 'video' && videoRec(p) === r) p.awaitingFrame = true;
        renderTile(p);
      }
    }
    return { track: trackId, enabled, sent };
  },
  /** ICE restarts on both PeerConnections, as the page makes when a path breaks (for tests of that path). */
  restartIce() {
    if (S.state !== 'joined') return { restarted: false, state: S.state };
    renegotiatePublish(true);
    sub.restart = true;
    changeSubscriptions();
    return { restarted: true };
  },
  /** Both PeerConnections' current local and remote SDP (for debugging an interop problem). */
  sdp() {
    const d = (pc) => pc ? { local: pc.localDescription && pc.localDescription.sdp, remote: pc.remoteDescription && pc.remoteDescription.sdp } : null;
    return { publish: d(pub.pc), subscribe: d(sub.pc) };
  },
  participants() {
    return [...remotes.values()].map((p) => ({
      id: p.id, name: p.name,
      tracks: [...p.tracks.values()].map((r) => ({ id: r.id, kind: r.kind, muted: r.muted, subscribed: r.subscribed,
        mid: r.transceiver ? r.transceiver.mid : null })),
    }));
  },
};

// ---------------------------------------------------------------------------------------------------- start

function showForm() {
  const form = $('form');
  form.hidden = false;
  const field = (name) => form.elements.namedItem(name);
  field('room').value = opts.room;
  field('name').value = opts.name;
  field('token').value = opts.token || '';
  field('source').checked = opts.source === 'test';
  // Keep the other parameters (color, tone, clock, audioProcessing) across the form.
  for (const [k, v] of q) {
    if (['room', 'name', 'token', 'source'].includes(k) || form.querySelector(`input[type=hidden][name="${k}"]`)) continue;
    form.appendChild(Object.assign(document.createElement('input'), { type: 'hidden', name: k, value: v }));
  }
}

$('cam').onclick = () => { mute('video', !local.muted.video).catch((e) => noteError('page', e.message)); };
$('mic').onclick = () => { mute('audio', !local.muted.audio).catch((e) => noteError('page', e.message)); };
$('leave').onclick = () => leave();
$('share').onclick = () => { share(!local.screen).catch((e) => noteError('share', `${e.name || ''}: ${e.message}`)); };
$('sound').onclick = () => {
  audioContext();
  for (const r of receivers) if (r.audioEl) r.audioEl.play().catch(() => {});
  $('sound').hidden = true;
};
document.addEventListener('click', () => { if (audioCtx) audioCtx.resume().catch(() => {}); });
// Unloading (a reload, the tab closed, another page): 4000 keeps the seat for a few seconds, so that a reload resumes
// it; the Leave button is the way to leave at once.
window.addEventListener('pagehide', () => { if (ws && S.state === 'joined') ws.close(4000, 'unloading'); });

$('room').textContent = opts.room;
if (!opts.room || !opts.name) {
  showForm();
  renderStatus();
} else {
  document.title = `${opts.room}: LiveSwarm meeting`;
  mine = makeTile(`${opts.name} (you)`);
  localMedia = getLocalMedia();
  localMedia.then((media) => {
    local.media = media;
    watchOwnVoice(media);
    mine.video.srcObject = new MediaStream(media.getVideoTracks());
    mine.video.play().catch(() => {});
    renderSelf();
    renderStatus();
  }, (e) => {
    noteError('media', `no camera or microphone: ${e.name || ''} ${e.message || e}`);
    local.media = new MediaStream();
    renderSelf();
  });
  renderSelf();
  connect();
}

// Glass clock tool page: plays ?src=URL, measures delay with GlassClock, draws it.
// Query parameters: src (required), window (seconds for median/p95/fps, default 5),
// span (seconds shown in the charts, default 60), loop=1, cors=0|1 (default: 1 when src
// is on another origin, so the canvas can read the pixels).
'use strict';

const params = new URLSearchParams(location.search);
const video = document.getElementById('video');
const errorBox = document.getElementById('error');
const spanSeconds = Number(params.get('span')) || 60;
const windowSeconds = Number(params.get('window')) || 5;

const clock = GlassClock.attach(video, { windowSeconds, keepSeconds: spanSeconds + 5 });
const fpsHistory = []; // { t, frames } once a second
let lastFramesSeen = 0;
let lastFpsAt = Date.now();
let chartLeft = 56;

const src = params.get('src');
document.getElementById('src').value = src || '';
if (src) {
  const url = new URL(src, location.href);
  const cors = params.get('cors');
  if (cors === '1' || (cors === null && url.origin !== location.origin)) video.crossOrigin = 'anonymous';
  video.loop = params.get('loop') === '1';
  video.src = url.href;
  video.play().catch((e) => showError('play() failed: ' + e.message));
} else {
  showError('Give a video URL: ?src=URL');
}
video.addEventListener('error', () => {
  const e = video.error;
  showError(`video error ${e ? e.code : '?'}: ${e && e.message ? e.message : 'cannot play this source'}`);
});

function showError(text) { errorBox.textContent = text; }

function videoState() {
  const e = video.error;
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  return {
    src: video.currentSrc || null,
    currentTime: video.currentTime,
    paused: video.paused,
    ended: video.ended,
    readyState: video.readyState,
    networkState: video.networkState,
    error: e ? { code: e.code, message: e.message } : null,
    totalVideoFrames: q ? q.totalVideoFrames : null,
    droppedVideoFrames: q ? q.droppedVideoFrames : null,
  };
}

/** For test drivers (Tests/Browser/drive.py): the reader's statistics plus the video element's state. */
window.glassClockStats = () => Object.assign(clock.stats(), { video: videoState() });
window.glassClock = clock;

function fmt(v, unit = '') { return v == null ? '–' : `${Math.round(v)}${unit}`; }

function updateNumbers(s) {
  document.getElementById('n-delay').textContent = fmt(s.lastDelayMs, ' ms');
  document.getElementById('n-window').textContent = `${fmt(s.window.medianMs)} / ${fmt(s.window.p95Ms)} ms`;
  document.getElementById('n-overall').textContent = `${fmt(s.overall.medianMs)} / ${fmt(s.overall.p95Ms)} ms`;
  document.getElementById('n-fps').textContent =
    `${s.window.fps == null ? '–' : s.window.fps.toFixed(1)} / ${s.window.sourceFps == null ? '–' : s.window.sourceFps.toFixed(1)}`;
  document.getElementById('n-frames').textContent = `${s.framesDecoded} / ${s.framesSeen}`;
  const corrupt = document.getElementById('n-corrupt');
  corrupt.textContent = `${s.framesCorrupt} (window ${s.window.corrupt})`;
  corrupt.className = s.window.corrupt ? 'bad' : '';
  document.getElementById('n-missed').textContent = String(s.framesMissed);
  document.getElementById('n-video').textContent = s.videoWidth ? `${s.videoWidth}×${s.videoHeight}` : '–';
  if (s.error) showError(s.error);
}

/** A round axis step (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`. */
function niceStep(range, count) {
  const raw = range / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

function setupCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = getComputedStyle(document.body).color;
  return ctx;
}

function drawDelayChart(s, nowMs) {
  const canvas = document.getElementById('delay-chart');
  const ctx = setupCanvas(canvas);
  const t0 = nowMs - spanSeconds * 1000;
  const samples = clock.samples().filter((x) => x.displayMs >= t0);
  const delays = samples.filter((x) => x.ok).map((x) => x.delayMs);
  // Start the axis at 0 so live delays read honestly, unless the values sit far above 0
  // (a recorded file played back later), where 0 would squash them into a flat line.
  let hi = delays.length ? Math.max(...delays) : 1000;
  let lo = delays.length ? Math.min(...delays) : 0;
  if (lo > 0 && lo < hi / 2) lo = 0;
  if (hi - lo < 50) { hi += 25; lo = Math.max(lo === 0 ? 0 : lo - 25, lo - 25); }
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const label = (v) => `${v} ms`;
  const L = (chartLeft = Math.max(56, ctx.measureText(label(hi)).width + 10)), R = 12, T = 8, B = 22;
  const w = canvas.width - L - R, h = canvas.height - T - B;
  const x = (t) => L + ((t - t0) / (spanSeconds * 1000)) * w;
  const y = (d) => T + h - ((d - lo) / (hi - lo)) * h;

  ctx.strokeStyle = '#8884';
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let v = lo; v <= hi + step / 2; v += step) {
    ctx.beginPath(); ctx.moveTo(L, y(v)); ctx.lineTo(L + w, y(v)); ctx.stroke();
    ctx.fillText(label(v), L - 4, y(v));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xStep = niceStep(spanSeconds, 6);
  for (let sAgo = 0; sAgo <= spanSeconds; sAgo += xStep) {
    ctx.fillText(sAgo === 0 ? 'now' : `-${sAgo} s`, x(nowMs - sAgo * 1000), T + h + 4);
  }

  ctx.fillStyle = '#2a7ae2';
  for (const p of samples) if (p.ok) ctx.fillRect(x(p.displayMs) - 1, y(p.delayMs) - 1, 2.5, 2.5);
  ctx.fillStyle = '#d33';
  for (const p of samples) if (!p.ok && p.reason !== 'nopicture') ctx.fillRect(x(p.displayMs) - 1, T + h - 8, 2, 8);

  const line = (v, color) => {
    if (v == null) return;
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.setLineDash(color === '#e90' ? [6, 4] : []);
    const x0 = x(nowMs - windowSeconds * 1000);
    ctx.beginPath(); ctx.moveTo(x0, y(v)); ctx.lineTo(L + w, y(v)); ctx.stroke();
    ctx.setLineDash([]); ctx.lineWidth = 1;
  };
  line(s.window.medianMs, '#2c2');
  line(s.window.p95Ms, '#e90');
}

function drawFpsChart(nowMs) {
  const canvas = document.getElementById('fps-chart');
  const ctx = setupCanvas(canvas);
  const L = chartLeft, R = 12, T = 6, B = 6; // same time axis as the delay chart
  const w = canvas.width - L - R, h = canvas.height - T - B;
  const t0 = nowMs - spanSeconds * 1000;
  const pts = fpsHistory.filter((p) => p.t >= t0);
  const top = Math.max(30, ...pts.map((p) => p.fps)) * 1.1;
  const y = (v) => T + h - (v / top) * h;
  ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  ctx.strokeStyle = '#8884';
  for (const v of [0, 15, 30]) {
    ctx.beginPath(); ctx.moveTo(L, y(v)); ctx.lineTo(L + w, y(v)); ctx.stroke();
    ctx.fillText(`${v} fps`, L - 4, y(v));
  }
  const barW = Math.max(1, w / spanSeconds - 1);
  for (const p of pts) {
    ctx.fillStyle = p.fps < 20 ? '#d33' : '#2a7ae2';
    const px = L + ((p.t - t0) / (spanSeconds * 1000)) * w;
    ctx.fillRect(px - barW, y(p.fps), barW, T + h - y(p.fps));
  }
}

function tick() {
  const s = clock.stats();
  if (s.framesSeen === 0) {
    lastFpsAt = s.now; // the first bar starts with the first frame, not with page load
  } else if (s.now - lastFpsAt >= 1000) {
    fpsHistory.push({ t: s.now, fps: ((s.framesSeen - lastFramesSeen) * 1000) / (s.now - lastFpsAt) });
    lastFramesSeen = s.framesSeen;
    lastFpsAt = s.now;
    while (fpsHistory.length > spanSeconds + 5) fpsHistory.shift();
  }
  updateNumbers(s);
  drawDelayChart(s, s.now);
  drawFpsChart(s.now);
}

setInterval(tick, 250);
tick();

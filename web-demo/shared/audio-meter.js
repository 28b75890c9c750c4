// Listens to a received audio track the way a viewer hears it and reports what it would notice (AudioAnalysis, in
// audio-analysis.js): level, frequency, gaps, clicks, and onsets on the page's clock (performance.now), for lip sync.
//
//   const meter = await AudioMeter.attach(track, { tone: 1000 });
//   meter.stats()   -> { frames, sampleRate, seconds, level, frequencies, gaps, gapMs, clicks, maxStep, events, onsets, path }
//
// Where the browser hands the page a track's samples (MediaStreamTrackProcessor, Chromium), they are read as the
// track delivers them to play-out: each chunk's timestamp is when it was played out, on the page's clock. Elsewhere an
// AudioWorklet listens through Web Audio; onsets are then placed by AudioContext.getOutputTimestamp, and the Web Audio
// path's own latency is part of what it measures. The track is played by a media element either way.
'use strict';

(() => {
const analysisURL = new URL('audio-analysis.js', document.currentScript.src).href;

async function withProcessor(track, tone) {
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  let analysis = null;
  let running = true;
  (async () => {
    while (running) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!analysis) analysis = new AudioAnalysis(value.sampleRate, tone);
      const samples = new Float32Array(value.numberOfFrames);
      value.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
      // timestamp: microseconds on the page's clock, when the chunk was delivered for play-out.
      analysis.push(samples, value.timestamp / 1e6);
      value.close();
    }
  })();
  const onsets = [];
  return {
    path: 'MediaStreamTrackProcessor',
    stats: () => {
      if (!analysis) return null;
      const s = analysis.summary();
      for (const t of s.onsets) onsets.push(t * 1000);
      return Object.assign(s, { seconds: s.frames / s.sampleRate, onsets: onsets.slice(), path: 'MediaStreamTrackProcessor' });
    },
    close: () => { running = false; reader.cancel(); },
  };
}

async function withWorklet(track, tone) {
  const ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
  await ctx.audioWorklet.addModule(analysisURL);
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const node = new AudioWorkletNode(ctx, 'audio-analysis', { processorOptions: { tone } });
  const silent = ctx.createGain();
  silent.gain.value = 0;
  source.connect(node).connect(silent).connect(ctx.destination);
  await ctx.resume();
  let latest = null;
  const onsets = [];
  node.port.onmessage = (e) => {
    latest = e.data;
    if (e.data.onsets.length) {
      const ts = ctx.getOutputTimestamp();
      for (const t of e.data.onsets) onsets.push(ts.performanceTime + (t - ts.contextTime) * 1000);
    }
  };
  return {
    path: 'AudioWorklet',
    stats: () => latest && Object.assign({}, latest, { seconds: latest.frames / latest.sampleRate, onsets: onsets.slice(), path: 'AudioWorklet' }),
    close: () => ctx.close(),
  };
}

window.AudioMeter = {
  attach(track, options = {}) {
    const tone = options.tone || null;
    return typeof MediaStreamTrackProcessor === 'function' && !options.webAudio ? withProcessor(track, tone) : withWorklet(track, tone);
  },
};
})();

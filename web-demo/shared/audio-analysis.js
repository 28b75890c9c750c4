// What a listener would notice in received audio, sample by sample (one channel): the level, the tone's frequency
// second by second, gaps (10 ms windows well under the tone's level), clicks (sample steps a sine of the tone's
// frequency cannot take), and onsets (sound after 200 ms of quiet). Used by audio-meter.js, in the page or, where
// the page cannot read the track's samples, in an AudioWorklet (this same file, loaded as its module).
'use strict';

class AudioAnalysis {
  constructor(sampleRate, tone) {
    this.rate = sampleRate;
    this.tone = tone || null;            // the expected tone (Hz), for the click threshold
    this.frames = 0;                     // samples seen
    // 10 ms windows: RMS, for gaps.
    this.win = 0; this.winSum = 0; this.winSize = Math.round(sampleRate / 100);
    this.levels = [];                    // RMS of the first 200 loud windows: the tone's own level
    this.reference = null;
    this.gaps = 0; this.gapMs = 0; this.inGap = false; this.started = false;
    // Upward zero crossings (with hysteresis, interpolated), per second of tone: the frequency.
    this.armed = false; this.crossings = []; this.frequencies = []; this.secondStart = null;
    // Second differences (a sine's are tiny; a discontinuity's are not): clicks.
    this.x1 = 0; this.x2 = 0; this.maxStep = 0; this.clicks = 0; this.lastClick = -1e9;
    this.quiet = 0;
    this.onsets = [];                    // times of sound after 200 ms of quiet, not yet collected
    this.events = [];                    // the first 20 gaps and clicks: [kind, time, value]
  }

  /** One chunk of samples; `start` is the time (seconds, the caller's clock) of its first sample. */
  push(x, start) {
    const amp = this.reference ? this.reference * Math.SQRT2 : 0.05;
    const hysteresis = amp / 4;
    const clickLimit = this.clickLimit();
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      const n = this.frames++;
      if (Math.abs(v) > 0.05) {
        if (this.quiet >= this.rate / 5) this.onsets.push(start + i / this.rate);
        this.quiet = 0;
      } else {
        this.quiet++;
      }
      if (v < -hysteresis) this.armed = true;
      else if (this.armed && v >= 0 && this.x1 < 0) {
        this.armed = false;
        this.crossings.push(n - 1 + (-this.x1) / (v - this.x1));
      }
      const step = Math.abs(v - 2 * this.x1 + this.x2);
      if (this.started && !this.inGap && n > 2) {
        if (step > this.maxStep) this.maxStep = step;
        if (step > clickLimit && n - this.lastClick > this.winSize) {
          this.clicks++;
          this.lastClick = n;
          this.note('click', start + i / this.rate, step);
        }
      }
      this.x2 = this.x1; this.x1 = v;
      this.winSum += v * v;
      if (++this.win === this.winSize) {
        const rms = Math.sqrt(this.winSum / this.winSize);
        this.win = 0; this.winSum = 0;
        this.window(rms, n, start + i / this.rate);
      }
    }
  }

  clickLimit() {
    if (!this.tone || !this.reference) return Infinity;
    return Math.max(0.02, 20 * this.reference * Math.SQRT2 * Math.pow(2 * Math.PI * this.tone / this.rate, 2));
  }

  note(kind, time, value) {
    if (this.events.length < 20) this.events.push([kind, Math.round(time * 1000) / 1000, Math.round(value * 1000) / 1000]);
  }

  window(rms, frame, time) {
    if (!this.started) {
      if (rms > 0.01) this.levels.push(rms);
      if (this.levels.length >= 200) {
        const sorted = this.levels.slice().sort((a, b) => a - b);
        this.reference = sorted[sorted.length >> 1];
        this.started = true;
        this.crossings = [];
        this.secondStart = frame;
      }
      return;
    }
    const low = rms < this.reference * 0.3;
    if (low) {
      this.gapMs += 10;
      if (!this.inGap) { this.gaps++; this.note('gap', time, rms); }
    }
    this.inGap = low;
    if (frame - this.secondStart >= this.rate) {
      const c = this.crossings.filter((t) => t >= this.secondStart && t <= frame);
      if (c.length >= 2) this.frequencies.push((c.length - 1) * this.rate / (c[c.length - 1] - c[0]));
      this.crossings = [];
      this.secondStart = frame;
    }
  }

  summary() {
    const limit = this.clickLimit();
    return { frames: this.frames, sampleRate: this.rate, level: this.reference, frequencies: this.frequencies.slice(), gaps: this.gaps,
      gapMs: this.gapMs, clicks: this.clicks, maxStep: this.maxStep, clickLimit: Number.isFinite(limit) ? limit : null,
      events: this.events.slice(), onsets: this.onsets.splice(0) };
  }
}

if (typeof AudioWorkletProcessor !== 'undefined') {
  registerProcessor('audio-analysis', class extends AudioWorkletProcessor {
    constructor(options) {
      super();
      this.analysis = new AudioAnalysis(sampleRate, options.processorOptions.tone);
      this.lastPost = 0;
    }

    process(inputs) {
      const input = inputs[0];
      if (input && input.length) this.analysis.push(input[0], currentFrame / sampleRate);
      if (currentFrame - this.lastPost >= sampleRate / 4) {
        this.lastPost = currentFrame;
        this.port.postMessage(this.analysis.summary());
      }
      return true;
    }
  });
}

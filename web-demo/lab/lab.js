// The swarm lab: test viewers of one stream, each a real P2P player (../p2p/?embed=1) in an iframe of this page, added
// 1, 5, 10 or 30 at a time; each can be paused, switched to the origin alone (P2P off) and removed, and so can all
// at once. Every second the page reads each viewer's own figures (window.viewer in its frame) and the origin's count
// of what each viewer took (GET /api/v1/streams/APP/STREAM, `hls`, by the viewer id the frame's requests carry), and
// charts the totals with Chart.js (Debian's libjs-chart.js, served at /javascript/chart.js/).
//
// Query: ?stream=APP/STREAM&target=3&viewers=N&p2p=0|1, and engine options passed to every viewer (seedStep,
// neighbours, urgent, uploadKbps, relay, announce).
// For test drivers and scripts/experiment.sh: window.lab (add, pause, resume, setP2P, remove, all, rows, totals,
// samples, charts).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(location.search);
  if (q.get('stream')) $('stream').value = q.get('stream');
  if (q.get('target')) $('target').value = q.get('target');
  if (q.get('p2p') === '0') $('newP2P').checked = false;
  const PASSED = ['seedStep', 'neighbours', 'urgent', 'uploadKbps', 'relay', 'announce'];
  const KEEP = 3600;   // an hour of samples, a second each

  const state = {
    viewers: [],         // {n, frame, box, removed}
    next: 1,
    samples: [],         // one a second: see sample()
    counted: new Map(),  // viewer id -> last counts seen, so that totals only grow (a removed viewer leaves its bytes in)
    totals: { originMedia: 0, originPlaylists: 0, reportedOrigin: 0, peers: 0, uploaded: 0 },
    origin: {},          // viewer id -> the origin's count {mediaBytes, playlistBytes, playlists}
    ticks: 0,
  };
  const stream = () => $('stream').value.trim();
  // The same token the dashboard keeps for this tab (sessionStorage).
  const token = $('token');
  token.value = sessionStorage.getItem('liveswarm-api-token') || '';
  token.onchange = () => sessionStorage.setItem('liveswarm-api-token', token.value);
  $('detail').href = `../api/v1/streams/${stream()}`;

  // --- viewers -------------------------------------------------------------------------------------------

  function add(count, options = {}) {
    const p2p = options.p2p ?? $('newP2P').checked;
    const target = parseFloat($('target').value) || 3;
    const extra = PASSED.filter((k) => q.get(k) != null).map((k) => `&${k}=${encodeURIComponent(q.get(k))}`).join('');
    for (let i = 0; i < count; i++) {
      const n = state.next++;
      const frame = document.createElement('iframe');
      frame.src = `../p2p/?stream=${encodeURIComponent(stream())}&target=${target}&embed=1&p2p=${p2p ? 1 : 0}${extra}`;
      frame.title = `viewer ${n}`;
      frame.allow = 'autoplay';
      const box = document.createElement('figure');
      const caption = document.createElement('figcaption');
      caption.innerHTML = `<span>#${n}</span><span data-caption="${n}"></span>`;
      box.append(frame, caption);
      $('frames').append(box);
      state.viewers.push({ n, frame, box, removed: false });
    }
    render();
    return state.viewers.slice(-count).map((v) => v.n);
  }

  const live = () => state.viewers.filter((v) => !v.removed);
  const byNumber = (n) => live().find((v) => v.n === n);
  /** The frame's own interface (web-demo/p2p/p2p.js), once it has loaded. */
  const api = (v) => { try { return v.frame.contentWindow && v.frame.contentWindow.viewer; } catch (e) { return null; } };

  function act(v, action) {
    const a = api(v);
    if (action === 'remove') {
      v.removed = true;
      v.box.remove();   // the frame's document goes, and with it its connections
      return true;
    }
    if (!a) return false;
    if (action === 'pause') a.pause();
    else if (action === 'resume') a.resume();
    else if (action === 'p2p-on') a.setP2P(true);
    else if (action === 'p2p-off') a.setP2P(false);
    return true;
  }

  function one(n, action) {
    const v = byNumber(n);
    const ok = v ? act(v, action) : false;
    render();
    return ok;
  }

  function all(action) {
    const done = live().map((v) => act(v, action)).filter(Boolean).length;
    render();
    return done;
  }

  // --- figures -------------------------------------------------------------------------------------------

  function statsOf(v) {
    try { return v.frame.contentWindow.p2pStats ? v.frame.contentWindow.p2pStats() : null; } catch (e) { return null; }
  }

  /** One row per viewer: its own figures and the origin's count of it. */
  function rows() {
    return live().map((v) => {
      const s = statsOf(v);
      const p = s && s.player;
      const id = s ? s.viewer : null;
      const o = (id && state.origin[id]) || null;
      const state_ = !p ? 'loading' : p.pausedByUser ? 'paused' : s.p2p ? 'playing' : 'solo';
      return {
        n: v.n, id, state: state_, p2p: s ? s.p2p : null,
        delay: p ? p.delay : null, stalls: p ? p.stalls : 0, stalledMs: p ? p.stalledMs : 0,
        reportedOrigin: s ? s.originBytes : 0, peers: s ? s.peerBytes : 0, uploaded: s ? s.uploadedBytes : 0,
        neighbours: s && s.engine ? s.engine.neighbours : 0,
        originMedia: o ? o.mediaBytes : null, originPlaylists: o ? o.playlistBytes : null, playlists: o ? o.playlists : null,
        playlistLoads: p ? p.playlistLoads : 0, announcedParts: p ? p.announcedParts : 0, lastResume: p ? p.lastResume : null,
        framesPresented: s ? s.framesPresented : null, playingSeconds: s ? s.playingSeconds : null,
        framesDecoded: s ? s.framesDecoded : null, framesDropped: s ? s.framesDropped : null, pcFailures: s ? s.pcFailures : 0,
      };
    });
  }

  async function originCounts() {
    try {
      const headers = token.value ? { Authorization: `Bearer ${token.value}` } : {};
      const r = await fetch(`../api/v1/streams/${stream()}`, { cache: 'no-store', headers });
      if (!r.ok) {
        $('errors').textContent = r.status === 404 ? `${stream()} is not live`
          : r.status === 401 ? 'stream detail: this server wants its API token (the field above)' : `stream detail: HTTP ${r.status}`;
        return;
      }
      const d = await r.json();
      const counts = {};
      for (const h of d.hls || []) if (h.protocol === 'll-hls') counts[h.id] = h;
      state.origin = counts;
      $('errors').textContent = '';
    } catch (e) {
      $('errors').textContent = `stream detail: ${e.message}`;
    }
  }

  /** Adds what each viewer took since the last sample to the totals (counts only grow; a viewer whose count restarted,
   *  its entry at the origin having expired, adds its new count). */
  function accumulate(rs) {
    for (const r of rs) {
      if (!r.id) continue;
      const last = state.counted.get(r.id) || { originMedia: 0, originPlaylists: 0, reportedOrigin: 0, peers: 0, uploaded: 0 };
      const now = { originMedia: r.originMedia ?? last.originMedia, originPlaylists: r.originPlaylists ?? last.originPlaylists,
                    reportedOrigin: r.reportedOrigin, peers: r.peers, uploaded: r.uploaded };
      for (const k of Object.keys(state.totals)) {
        const d = now[k] - last[k];
        state.totals[k] += d >= 0 ? d : now[k];
      }
      state.counted.set(r.id, now);
    }
  }

  function median(xs) {
    const s = xs.filter((x) => x != null).sort((a, b) => a - b);
    if (!s.length) return null;
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  async function sample() {
    await originCounts();
    const rs = rows();
    accumulate(rs);
    const t = performance.now() / 1000;
    const playing = rs.filter((r) => r.state === 'playing' || r.state === 'solo');
    const s = { t, wall: Date.now(), viewers: rs.length, playing: playing.length, p2pViewers: rs.filter((r) => r.p2p && r.state === 'playing').length,
                ...state.totals, medianDelay: median(playing.map((r) => r.delay)),
                stalledMs: rs.reduce((n, r) => n + r.stalledMs, 0) };
    state.samples.push(s);
    if (state.samples.length > KEEP) state.samples.shift();
    state.ticks += 1;
    draw();
    render(rs);
  }

  /** Rates and shares over the `seconds` before the last sample. */
  function window_(seconds) {
    const ss = state.samples;
    if (ss.length < 2) return null;
    const b = ss[ss.length - 1];
    let a = ss[0];
    for (let i = ss.length - 1; i >= 0; i--) { if (b.t - ss[i].t >= seconds) { a = ss[i]; break; } }
    const dt = b.t - a.t;
    if (dt <= 0) return null;
    const d = (k) => b[k] - a[k];
    const media = d('originMedia') + d('peers');
    return {
      dt, originMediaKbps: d('originMedia') * 8 / 1000 / dt, originPlaylistsKbps: d('originPlaylists') * 8 / 1000 / dt,
      reportedOriginKbps: d('reportedOrigin') * 8 / 1000 / dt, peersKbps: d('peers') * 8 / 1000 / dt,
      shareMedia: media > 0 ? d('peers') / media : null,
      shareAll: media + d('originPlaylists') > 0 ? d('peers') / (media + d('originPlaylists')) : null,
    };
  }

  // --- charts --------------------------------------------------------------------------------------------

  const charts = {};
  if (typeof window.Chart === 'function') {
    const axis = { type: 'linear', title: { display: true, text: 'seconds before now' }, ticks: { maxTicksLimit: 7 } };
    const line = (label, colour, extra = {}) => ({ label, data: [], borderColor: colour, backgroundColor: colour, pointRadius: 0, borderWidth: 2, ...extra });
    charts.traffic = new Chart($('traffic'), {
      type: 'line', options: { animation: false, maintainAspectRatio: false, scales: { x: axis, y: { beginAtZero: true, title: { display: true, text: 'kbit/s' } } } },
      data: { datasets: [line('origin media (its count)', '#d62728'), line('origin playlists (its count)', '#ff7f0e'),
                         line('origin media (viewers say)', '#8c564b', { borderDash: [4, 3] }), line('from peers (viewers say)', '#2ca02c')] },
    });
    charts.share = new Chart($('share'), {
      type: 'line',
      options: { animation: false, maintainAspectRatio: false, scales: {
        x: axis, y: { min: 0, max: 100, title: { display: true, text: '%' } },
        y1: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 's' } } } },
      data: { datasets: [line('share of media', '#2ca02c'), line('share of everything', '#1f77b4'),
                         line('(N-1)/N ceiling', '#7f7f7f', { borderDash: [6, 4] }), line('median delay', '#9467bd', { yAxisID: 'y1' })] },
    });
  } else {
    $('nochart').hidden = false;
    $('nochart').textContent = 'Charts are off: Chart.js did not load from /javascript/chart.js/chart.min.js (Debian\'s libjs-chart.js). The table still works.';
  }

  /** Points of the last `span` seconds, at most 600 (a point every few seconds over an hour). */
  function draw() {
    if (!charts.traffic) return;
    const ss = state.samples;
    const span = 600;
    const last = ss[ss.length - 1];
    const traffic = [[], [], [], []];
    const share = [[], [], [], []];
    for (let i = 1; i < ss.length; i++) {
      const a = ss[i - 1], b = ss[i];
      const x = Math.round((b.t - last.t) * 10) / 10;
      if (x < -span) continue;
      const dt = b.t - a.t;
      if (dt <= 0) continue;
      const kbps = (k) => Math.max(0, (b[k] - a[k]) * 8 / 1000 / dt);
      traffic[0].push({ x, y: kbps('originMedia') });
      traffic[1].push({ x, y: kbps('originPlaylists') });
      traffic[2].push({ x, y: kbps('reportedOrigin') });
      traffic[3].push({ x, y: kbps('peers') });
    }
    // Shares over a sliding 10 s window (a second's worth is a part or two: too coarse to read).
    for (let i = 0; i < ss.length; i++) {
      const b = ss[i];
      const x = Math.round((b.t - last.t) * 10) / 10;
      if (x < -span) continue;
      let a = null;
      for (let j = i; j >= 0; j--) { if (b.t - ss[j].t >= 10) { a = ss[j]; break; } }
      if (a) {
        const peers = b.peers - a.peers, media = peers + b.originMedia - a.originMedia, pl = b.originPlaylists - a.originPlaylists;
        if (media > 0) share[0].push({ x, y: 100 * peers / media });
        if (media + pl > 0) share[1].push({ x, y: 100 * peers / (media + pl) });
      }
      if (b.p2pViewers > 0) share[2].push({ x, y: 100 * (b.p2pViewers - 1) / b.p2pViewers });
      if (b.medianDelay != null) share[3].push({ x, y: b.medianDelay });
    }
    traffic.forEach((d, i) => { charts.traffic.data.datasets[i].data = d; });
    share.forEach((d, i) => { charts.share.data.datasets[i].data = d; });
    charts.traffic.update('none');
    charts.share.update('none');
  }

  // --- page ----------------------------------------------------------------------------------------------

  const mb = (b) => (b == null ? '-' : (b / 1e6).toFixed(2) + ' MB');

  /** The row of viewer `r.n`, made once and then updated in place (a click never lands on a row being replaced). */
  function rowElement(r) {
    const tbody = $('viewers').tBodies[0];
    let tr = tbody.querySelector(`tr[data-viewer="${r.n}"]`);
    if (tr) return tr;
    tr = document.createElement('tr');
    tr.dataset.viewer = r.n;
    const cells = ['n', 'id', 'state', 'delay', 'stalls', 'reported', 'origin', 'playlists', 'peers', 'uploaded', 'neighbours'];
    tr.innerHTML = cells.map((c) => `<td data-cell="${c}"${['n', 'id', 'state'].includes(c) ? '' : ' class="n"'}></td>`).join('')
      + `<td><button data-n="${r.n}" data-action="pause">pause</button> <button data-n="${r.n}" data-action="p2p-off">P2P off</button>
         <button data-n="${r.n}" data-action="remove">remove</button></td>`;
    tbody.append(tr);
    return tr;
  }

  function render(rs = rows()) {
    const tbody = $('viewers').tBodies[0];
    for (const tr of [...tbody.rows]) if (!rs.some((r) => String(r.n) === tr.dataset.viewer)) tr.remove();
    for (const r of rs) {
      const tr = rowElement(r);
      const set = (cell, text) => { const td = tr.querySelector(`[data-cell="${cell}"]`); if (td.textContent !== text) td.textContent = text; };
      set('n', String(r.n));
      set('id', r.id ? r.id.slice(-8) : '-');
      set('state', r.state === 'solo' ? 'P2P off' : r.state);
      tr.querySelector('[data-cell="state"]').className = `state-${r.state}`;
      set('delay', r.delay == null ? '-' : r.delay.toFixed(2) + ' s');
      set('stalls', `${r.stalls} (${(r.stalledMs / 1000).toFixed(1)} s)`);
      set('reported', mb(r.reportedOrigin));
      set('origin', mb(r.originMedia));
      set('playlists', r.playlists == null ? '-' : `${r.playlists} (${(r.originPlaylists / 1e3).toFixed(0)} kB)`);
      set('peers', mb(r.peers));
      set('uploaded', mb(r.uploaded));
      set('neighbours', String(r.neighbours));
      const [pause, p2p] = tr.querySelectorAll('button');
      const pa = r.state === 'paused' ? 'resume' : 'pause';
      if (pause.dataset.action !== pa) { pause.dataset.action = pa; pause.textContent = pa; }
      const pp = r.p2p === false ? 'p2p-on' : 'p2p-off';
      if (p2p.dataset.action !== pp) { p2p.dataset.action = pp; p2p.textContent = r.p2p === false ? 'P2P on' : 'P2P off'; }
    }
    for (const v of live()) {
      const r = rs.find((x) => x.n === v.n);
      v.box.className = r ? (r.state === 'paused' ? 'paused' : r.state === 'solo' ? 'solo' : '') : '';
      const c = v.box.querySelector('[data-caption]');
      if (c && r) c.textContent = r.delay == null ? r.state : `${r.delay.toFixed(1)} s ${r.state === 'playing' ? '' : r.state === 'solo' ? 'P2P off' : r.state}`;
    }
    const w = window_(10);
    const n = rs.filter((r) => r.p2p && r.state === 'playing').length;
    const all = state.samples.length ? state.samples[state.samples.length - 1] : null;
    const shareAll = all && all.peers + all.originMedia > 0 ? all.peers / (all.peers + all.originMedia) : null;
    const fig = [
      ['viewers', `${rs.length} (${rs.filter((r) => r.state === 'paused').length} paused, ${rs.filter((r) => r.state === 'solo').length} with P2P off)`],
      ['P2P share, last 10 s', w && w.shareMedia != null ? `${(w.shareMedia * 100).toFixed(1)} % of media, ${(w.shareAll * 100).toFixed(1)} % of everything` : '-'],
      ['ceiling (N-1)/N', n ? `${((n - 1) / n * 100).toFixed(1)} %` : '-'],
      ['since the start', shareAll == null ? '-' : `${(shareAll * 100).toFixed(1)} % of media`],
      ['median delay', all && all.medianDelay != null ? `${all.medianDelay.toFixed(2)} s` : '-'],
      ['origin now', w ? `${Math.round(w.originMediaKbps)} + ${Math.round(w.originPlaylistsKbps)} kbit/s (media + playlists)` : '-'],
    ];
    $('figures').innerHTML = fig.map(([k, v]) => `<div><span>${k}</span><b>${v}</b></div>`).join('');
  }

  $('viewers').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (b) one(Number(b.dataset.n), b.dataset.action);
  });
  for (const b of document.querySelectorAll('button[data-add]')) b.onclick = () => add(Number(b.dataset.add));
  for (const b of document.querySelectorAll('button[data-all]')) b.onclick = () => all(b.dataset.all);
  $('stream').onchange = () => { $('detail').href = `../api/v1/streams/${stream()}`; };

  setInterval(sample, 1000);
  if (q.get('viewers')) add(Math.max(0, Math.min(60, parseInt(q.get('viewers'), 10) || 0)));

  window.lab = {
    add, all, rows, charts, state,
    pause: (n) => one(n, 'pause'), resume: (n) => one(n, 'resume'), remove: (n) => one(n, 'remove'),
    setP2P: (n, on) => one(n, on ? 'p2p-on' : 'p2p-off'),
    totals: () => ({ ...state.totals }),
    samples: () => state.samples,
    window: window_,
    get ticks() { return state.ticks; },
  };
})();

// The operator dashboard: follows /api/v1/dashboard/events (server-sent events: the last hour's rows first, then a
// frame and a row a second), draws four charts with Chart.js (Debian's libjs-chart.js, served by LiveSwarm at
// /javascript/chart.js/) on a linear axis of seconds before now, and fills the tables. The P2P switch of a stream
// is PUT /api/v1/p2p/streams/APP/STREAM with the API token.
//
// For test drivers: window.dashboard.charts (the Chart objects: read their data, not their pixels),
// window.dashboard.frame (the last frame), window.dashboard.ticks (frames received).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const HOUR = 3600;
  const COLOURS = {
    rtmp: '#8c564b', 'http-flv': '#e377c2', hls: '#ff7f0e', 'll-hls': '#d62728', whep: '#1f77b4', rooms: '#9467bd',
    turn: '#7f7f7f', p2p: '#2ca02c', peers: '#2ca02c', origin: '#d62728',
  };
  const PROTOCOLS = ['rtmp', 'http-flv', 'hls', 'll-hls', 'whep', 'p2p'];
  const EGRESS = ['rtmp', 'http-flv', 'hls', 'll-hls', 'whep', 'rooms', 'turn'];
  const state = { columns: null, server: { time: [], rows: [] }, streams: {}, frame: null, ticks: 0 };
  const token = $('token');
  token.value = sessionStorage.getItem('liveswarm-api-token') || '';
  token.onchange = () => sessionStorage.setItem('liveswarm-api-token', token.value);

  // --- charts --------------------------------------------------------------------------------------------

  const charts = {};
  const haveCharts = typeof window.Chart === 'function';
  if (!haveCharts) {
    $('nochart').hidden = false;
    $('nochart').textContent = 'Charts are off: Chart.js did not load from /javascript/chart.js/chart.min.js. LiveSwarm serves it from '
      + "Debian's libjs-chart.js package (apt install libjs-chart.js; the README's commands install it). The tables below still work.";
    for (const f of document.querySelectorAll('.charts figure')) f.hidden = true;
  }

  function chart(id, yTitle, y1Title, stacked) {
    const scales = {
      x: { type: 'linear', title: { display: true, text: 'seconds before now' }, ticks: { maxTicksLimit: 7 } },
      y: { beginAtZero: true, stacked, title: { display: true, text: yTitle } },
    };
    if (y1Title) scales.y1 = { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: y1Title } };
    return new Chart($(id), {
      type: 'line',
      data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        elements: { point: { radius: 0 }, line: { borderWidth: 1.5, tension: 0 } },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
        scales,
      },
    });
  }

  if (haveCharts) {
    charts.egress = chart('egress', 'Mbit/s', null, true);
    charts.viewers = chart('viewers', 'viewers', null, true);
    charts.p2p = chart('p2p', 'P2P share %', 'delay s', false);
    charts.server = chart('server', 'CPU %', 'MB', false);
  }

  /** One series of a ring as chart points: x seconds before `now`, y = f(value) (null stays a gap). */
  function points(ring, column, now, span, f) {
    const out = [];
    if (column < 0) return out;
    for (let i = 0; i < ring.time.length; i++) {
      const x = ring.time[i] - now;
      if (x < -span) continue;
      const v = ring.rows[i][column];
      out.push({ x, y: v == null ? null : f(v) });
    }
    return out;
  }

  function dataset(label, colour, data, extra) {
    return Object.assign({ label, data, borderColor: colour, backgroundColor: colour + '55' }, extra || {});
  }

  function draw() {
    if (!haveCharts || !state.columns) return;
    const now = state.frame ? state.frame.time : Date.now() / 1000;
    const span = parseInt($('window').value, 10);
    const scope = $('scope').value;
    const server = state.server;
    const sc = (name) => state.columns.server.indexOf(name);
    const mbit = (v) => v * 8 / 1e6;
    const stacked = (i) => ({ fill: i === 0 ? 'origin' : '-1', stack: 'a' });
    let ring; let col;
    if (scope && state.streams[scope]) {
      ring = state.streams[scope];
      col = (name) => state.columns.stream.indexOf(name);
      charts.egress.data.datasets = [
        dataset('origin (HLS media)', COLOURS.origin, points(ring, col('origin'), now, span, mbit), stacked(0)),
        dataset('peers', COLOURS.peers, points(ring, col('peers'), now, span, mbit), { stack: 'peers', borderDash: [4, 3] }),
      ];
    } else {
      ring = server;
      col = sc;
      charts.egress.data.datasets = EGRESS.map((p, i) => dataset(p, COLOURS[p], points(ring, col(`egress.${p}`), now, span, mbit), stacked(i)))
        .concat([dataset('peers (reported)', COLOURS.peers, points(ring, col('peers'), now, span, mbit), { stack: 'peers', borderDash: [4, 3] })]);
    }
    charts.viewers.data.datasets = PROTOCOLS.map((p, i) => dataset(p, COLOURS[p], points(ring, col(`viewers.${p}`), now, span, (v) => v), stacked(i)));
    charts.p2p.data.datasets = [
      dataset('P2P share', COLOURS.p2p, points(ring, col('p2pShare'), now, span, (v) => v * 100), { yAxisID: 'y' }),
      dataset('median delay', '#1f77b4', points(ring, col('medianDelay'), now, span, (v) => v), { yAxisID: 'y1' }),
    ];
    charts.server.data.datasets = [
      dataset('CPU', '#d62728', points(server, sc('cpu'), now, span, (v) => v), { yAxisID: 'y' }),
      dataset('memory', '#1f77b4', points(server, sc('memory'), now, span, (v) => v / 1e6), { yAxisID: 'y1' }),
    ];
    for (const c of Object.values(charts)) {
      c.options.scales.x.min = -span;
      c.options.scales.x.max = 0;
      c.update('none');
    }
  }

  // --- tables and figures ----------------------------------------------------------------------------------

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  const rate = (bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${(bps / 1e3).toFixed(0)} kbit/s`);
  const pct = (v) => (v == null ? '-' : `${(v * 100).toFixed(0)} %`);
  function duration(s) {
    s = Math.floor(s);
    const h = Math.floor(s / 3600); const m = Math.floor((s % 3600) / 60);
    return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
  }
  const count = (n, attrs) => `<td class="n${n ? '' : ' zero'}" ${attrs}>${n}</td>`;

  function figures(f) {
    const egress = Object.values(f.egress).reduce((a, b) => a + b, 0);
    const items = [
      ['viewers', f.viewers ? Object.values(f.viewers).reduce((a, b) => a + b, 0) : 0, 'viewers'],
      ['origin out', rate(egress * 8), 'egress'],
      ['peers', rate(f.peerBytesPerSecond * 8), 'peers'],
      ['P2P share', pct(f.p2pShare), 'share'],
      ['median delay', f.medianDelay == null ? '-' : `${f.medianDelay.toFixed(2)} s`, 'delay'],
      ['stalls', f.stalls, 'stalls'],
      ['CPU', f.server.cpuPercent == null ? '-' : `${f.server.cpuPercent.toFixed(0)} % of ${f.server.cores} cores`, 'cpu'],
      ['memory', f.server.memoryBytes == null ? '-' : `${(f.server.memoryBytes / 1e6).toFixed(0)} MB`, 'memory'],
      ['up', duration(f.server.uptimeSeconds), 'uptime'],
    ];
    $('figures').innerHTML = items.map(([k, v, id]) => `<div><span>${k}</span><b data-figure="${id}">${esc(v)}</b></div>`).join('');
  }

  function streams(f) {
    const body = $('streams').tBodies[0];
    body.innerHTML = f.streams.map((s) => {
      const name = esc(s.stream);
      const codecs = [s.videoCodec, s.width ? `${s.width}x${s.height}` : null, s.frameRate ? `${Math.round(s.frameRate)} fps` : null, s.audioCodec]
        .filter(Boolean).map(esc).join(' ');
      const cells = PROTOCOLS.map((p) => count(s.viewers[p], `data-stream="${name}" data-protocol="${p}"`)).join('');
      const p2p = s.p2p;
      const button = `<button data-switch="${name}" data-enable="${p2p.enabled ? 'false' : 'true'}">${p2p.enabled ? 'switch off' : 'switch on'}</button>`;
      return `<tr class="${s.live ? '' : 'ended'}" data-row="${name}"><td>${name}</td>
        <td>${esc(s.publisher || (s.live ? '-' : 'ended'))}${s.publisherPeer ? `<br><span class="muted">${esc(s.publisherPeer)}</span>` : ''}</td>
        <td>${codecs || '-'}</td><td class="n">${s.live ? rate(s.bitrate) : '-'}</td><td>${s.live ? duration(s.uptimeSeconds) : '-'}</td>
        ${cells}<td class="n" data-share="${name}">${pct(p2p.share)}</td>
        <td class="n">${p2p.medianDelay == null ? '-' : `${p2p.medianDelay.toFixed(2)} s`}</td><td class="n">${p2p.stalls}</td>
        <td><span class="${p2p.enabled ? 'on' : 'off'}" data-p2p="${name}">${p2p.enabled ? 'on' : 'off'}</span> ${button}</td></tr>`;
    }).join('') || '<tr><td colspan="15" class="muted">no streams</td></tr>';
    const scope = $('scope');
    const known = new Set([...scope.options].map((o) => o.value));
    for (const name of Object.keys(state.streams)) {
      if (known.has(name)) continue;
      const o = document.createElement('option');
      o.value = name; o.textContent = name;
      scope.appendChild(o);
    }
  }

  function rooms(f) {
    $('rooms').tBodies[0].innerHTML = f.rooms.map((r) => `<tr data-room="${esc(r.name)}"><td>${esc(r.name)}</td>
      <td data-participants="${esc(r.name)}"><b>${r.participants.length}</b>: ${r.participants.map((p) => esc(p.name) + (p.connected ? '' : ' (away)')).join(', ')}</td>
      <td class="n">${r.tracks}</td></tr>`).join('') || '<tr><td colspan="3" class="muted">no rooms</td></tr>';
    const t = f.turn;
    $('turn').tBodies[0].innerHTML = t
      ? `<tr><td>allocations</td>${count(t.allocations, 'data-turn="allocations"')}</tr>
         <tr><td>relaying now</td><td class="n">${rate(t.bytesPerSecond * 8)}</td></tr>
         <tr><td>relayed since start</td><td class="n" data-turn="bytes">${(t.relayedBytes / 1e6).toFixed(2)} MB in ${t.relayedPackets} packets</td></tr>`
      : '<tr><td class="muted">TURN is off</td></tr>';
  }

  function render() {
    const f = state.frame;
    if (!f) return;
    figures(f);
    streams(f);
    rooms(f);
    draw();
  }

  // --- the P2P switch ----------------------------------------------------------------------------------------

  $('streams').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-switch]');
    if (!b) return;
    const enable = b.dataset.enable === 'true';
    b.disabled = true;
    try {
      const r = await fetch(`/api/v1/p2p/streams/${b.dataset.switch}`, {
        method: 'PUT', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token.value}` },
        body: JSON.stringify({ enabled: enable }),
      });
      $('errors').textContent = r.ok ? '' : `P2P switch for ${b.dataset.switch}: HTTP ${r.status} ${await r.text()}`;
    } catch (err) {
      $('errors').textContent = `P2P switch: ${err.message}`;
    }
  });

  // --- the feed ------------------------------------------------------------------------------------------------

  function trim(ring) {
    const extra = ring.time.length - HOUR;
    if (extra > 0) { ring.time.splice(0, extra); ring.rows.splice(0, extra); }
  }

  const events = new EventSource(`/api/v1/dashboard/events?seconds=${HOUR}`);
  events.addEventListener('history', (e) => {
    const h = JSON.parse(e.data);
    state.columns = h.columns;
    state.server = h.server;
    state.streams = h.streams;
    state.frame = h.frame;
    $('connection').textContent = 'live';
    render();
  });
  events.addEventListener('tick', (e) => {
    const t = JSON.parse(e.data);
    const time = t.frame.time;
    // A page that joined between a sample and its tick has that row in its history already.
    const last = state.server.time[state.server.time.length - 1];
    if (last !== undefined && time <= last) { state.frame = t.frame; return; }
    state.server.time.push(time); state.server.rows.push(t.server); trim(state.server);
    for (const [name, row] of Object.entries(t.streams)) {
      const ring = state.streams[name] || (state.streams[name] = { time: [], rows: [] });
      ring.time.push(time); ring.rows.push(row); trim(ring);
    }
    state.frame = t.frame;
    state.ticks += 1;
    render();
  });
  events.onerror = () => { $('connection').textContent = 'reconnecting…'; };
  $('scope').onchange = draw;
  $('window').onchange = draw;

  window.dashboard = {
    charts,
    get frame() { return state.frame; },
    get ticks() { return state.ticks; },
    state,
  };
}());

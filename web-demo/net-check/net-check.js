// The media port's reachability check (server side: Sources/Server/RTCProbe.swift), directly (udp, tcp, all) and
// through the server's TURN relays only (turn-udp, turn-tcp, turn-tls: the ICE servers GET /api/v1/ice-servers
// hands out, narrowed to one TURN transport). window.netCheck holds the results by transport, for people and tests.
'use strict';

window.netCheck = {};

/** How a TURN URL reaches its server: 'tls' (turns:), 'tcp' (transport=tcp) or 'udp'. */
function turnTransport(url) {
  if (url.startsWith('turns:')) return 'tls';
  return /[?&]transport=tcp\b/.test(url) ? 'tcp' : 'udp';
}

/** The RTCPeerConnection configuration for a check: no servers for a direct one; for turn-X, the server's TURN
 *  URLs over X only, relays only. Null when the server offers no TURN over X. */
async function configFor(transport) {
  if (!transport.startsWith('turn-')) return { iceServers: [] };
  const over = transport.slice(5);
  const r = await fetch('/api/v1/ice-servers');
  if (!r.ok) throw new Error(`/api/v1/ice-servers answered ${r.status}`);
  const servers = ((await r.json()).iceServers || [])
    .map((s) => Object.assign({}, s, { urls: s.urls.filter((u) => /^turns?:/.test(u) && turnTransport(u) === over) }))
    .filter((s) => s.urls.length);
  return servers.length ? { iceServers: servers, iceTransportPolicy: 'relay' } : null;
}

async function check(transport, keep) {
  const result = { transport, state: 'new', states: [], startedAt: performance.now() };
  window.netCheck[transport] = result;
  render();
  let config;
  try {
    config = await configFor(transport);
  } catch (e) {
    result.error = String(e);
  }
  if (config === null) {
    result.state = 'unavailable';
    result.error = `the server offers no TURN over ${transport.slice(5).toUpperCase()}`;
  }
  if (!config) {
    render();
    return result;
  }
  const pc = new RTCPeerConnection(config);
  pc.onconnectionstatechange = () => {
    result.connectionState = pc.connectionState;
    if (pc.connectionState === 'connected' && result.dtlsConnectedMs === undefined) {
      result.dtlsConnectedMs = Math.round(performance.now() - result.startedAt);
      describePair(pc, result).then(render);
    }
    render();
  };
  pc.oniceconnectionstatechange = () => {
    result.state = pc.iceConnectionState;
    result.states.push(pc.iceConnectionState);
    if (pc.iceConnectionState === 'connected' && result.connectedMs === undefined) {
      result.connectedMs = Math.round(performance.now() - result.startedAt);
      describePair(pc, result).then(render);
    }
    render();
  };
  try {
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    // A relay reaches the media port over UDP, whatever carries the browser's side.
    const probeTransport = transport.startsWith('turn-') ? 'udp' : transport;
    const response = await fetch(`/api/v1/rtc/probe?transport=${probeTransport}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (!response.ok) throw new Error(`server answered ${response.status}: ${await response.text()}`);
    result.probe = response.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    await waitFor(() => ['connected', 'completed', 'failed'].includes(pc.iceConnectionState), 15000);
    // Then DTLS over the pair (up to 5 s more), so that the server's view read next is the settled one.
    await waitFor(() => ['connected', 'failed'].includes(pc.connectionState), 5000).catch(() => {});
    // The server selects the pair when the browser nominates it (USE-CANDIDATE), which can come after DTLS is done
    // when the handshake is quick: its view is read again until it has (up to 3 s).
    for (const until = Date.now() + 3000; result.probe;) {
      result.server = await (await fetch(result.probe)).json();
      if ((result.server.state === 'connected' && result.server.selected) || result.server.state === 'closed' || Date.now() > until) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (e) {
    result.error = String(e);
  }
  render();
  if (!keep) {
    pc.close();
    if (result.probe) fetch(result.probe, { method: 'DELETE' });
  } else {
    // Kept open: follow the server's view of the session once a second.
    window.netCheckConnections = (window.netCheckConnections || []).concat([pc]);
    if (result.probe) {
      setInterval(async () => {
        try {
          await describePair(pc, result);
          result.server = await (await fetch(result.probe)).json();
          render();
        } catch (e) { /* the next one may work */ }
      }, 1000);
    }
  }
  return result;
}

async function describePair(pc, result) {
  const stats = await pc.getStats();
  let pair;
  stats.forEach((s) => {
    if (s.type !== 'transport') return;
    if (s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    result.dtls = { state: s.dtlsState, version: s.tlsVersion, cipher: s.dtlsCipher, srtpCipher: s.srtpCipher, role: s.dtlsRole };
  });
  if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  const addr = (c) => c && `${c.protocol} ${c.address || c.ip}:${c.port} (${c.candidateType}${c.tcpType ? ', ' + c.tcpType : ''})`;
  result.selectedPair = { local: addr(local), remote: addr(remote), rttMs: pair.currentRoundTripTime * 1000,
                          localAddress: local && `${local.address || local.ip}:${local.port}`,
                          localType: local && local.candidateType, relayProtocol: (local && local.relayProtocol) || null };
  result.remoteProtocol = remote && remote.protocol;
}

function waitFor(condition, ms) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const timer = setInterval(() => {
      if (condition()) { clearInterval(timer); resolve(); } else if (performance.now() - start > ms) {
        clearInterval(timer); reject(new Error(`no ICE connection within ${ms / 1000} s`));
      }
    }, 50);
  });
}

function render() {
  const body = document.getElementById('results');
  body.innerHTML = '';
  for (const r of Object.values(window.netCheck)) {
    const tr = document.createElement('tr');
    const good = r.state === 'connected' || r.state === 'completed';
    const relay = r.selectedPair && r.selectedPair.relayProtocol ? ` via a TURN relay over ${r.selectedPair.relayProtocol.toUpperCase()}` : '';
    const pair = r.selectedPair ? `${r.selectedPair.local} → ${r.selectedPair.remote}${relay}` : (r.error || '');
    const server = r.server ? `${r.server.state}, selected ${r.server.selected || '-'}, ${r.server.checks} checks, ${r.server.dtlsPackets} DTLS packets` : '';
    const dtls = r.dtls ? `${r.dtls.state}${r.dtls.srtpCipher ? ', ' + r.dtls.srtpCipher : ''}${r.dtls.cipher ? ', ' + r.dtls.cipher : ''}` : '';
    const times = [r.connectedMs, r.dtlsConnectedMs].map((t) => t !== undefined ? `${t} ms` : '-').join(' / ');
    for (const text of [r.transport, r.state, times, pair, dtls, server]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.children[1].className = good ? 'ok' : (r.state === 'failed' || r.error ? 'bad' : '');
    body.appendChild(tr);
  }
}

for (const t of ['udp', 'tcp', 'all']) document.getElementById(t).onclick = () => check(t, false);
document.getElementById('turn').onclick = async () => {
  for (const t of ['turn-udp', 'turn-tcp', 'turn-tls']) await check(t, false);
};
const params = new URLSearchParams(location.search);
if (params.get('transport') === 'turn') {
  (async () => { for (const t of ['turn-udp', 'turn-tcp', 'turn-tls']) await check(t, params.get('keep') === '1'); })();
} else if (params.get('transport')) {
  check(params.get('transport'), params.get('keep') === '1');
}

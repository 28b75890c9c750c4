// The media port's reachability check (server side: Sources/Server/RTCProbe.swift).
// window.netCheck holds the results by transport, for people and for tests.
'use strict';

window.netCheck = {};

async function check(transport, keep) {
  const result = { transport, state: 'new', states: [], startedAt: performance.now() };
  window.netCheck[transport] = result;
  render();
  const pc = new RTCPeerConnection({ iceServers: [] });
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
    const response = await fetch(`/api/v1/rtc/probe?transport=${transport}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (!response.ok) throw new Error(`server answered ${response.status}: ${await response.text()}`);
    result.probe = response.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    await waitFor(() => ['connected', 'completed', 'failed'].includes(pc.iceConnectionState), 15000);
    if (result.probe) result.server = await (await fetch(result.probe)).json();
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
                          localAddress: local && `${local.address || local.ip}:${local.port}` };
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
    const pair = r.selectedPair ? `${r.selectedPair.local} → ${r.selectedPair.remote}` : (r.error || '');
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
const params = new URLSearchParams(location.search);
if (params.get('transport')) check(params.get('transport'), params.get('keep') === '1');

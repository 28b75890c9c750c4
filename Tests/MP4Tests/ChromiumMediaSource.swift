import Foundation
import NIOCore
import TestSupport

/// Drives headless Chromium's Media Source Extensions (test-only): appends an init segment and
/// fragments to one SourceBuffer, plays to the end in real time and reports what the page saw.
///
/// Chromium is steered over `--remote-debugging-pipe` by a small node script, because `--dump-dom`
/// relies on virtual time, under which media playback stalls at random.
enum ChromiumMediaSource {
    /// A missing browser is a failure that says how to get it, never a skip (as TestSupport.runTool).
    struct ChromiumError: Error, CustomStringConvertible {
        var description: String
    }

    struct Report {
        /// "ended", "unsupported", "sourcebuffer-error", "video-error:<code>:<message>", "timeout".
        var status: String
        var fields: [String: String]
        var line: String
    }

    static func play(segments: [ByteBuffer], mimeType: String, in dir: URL) throws -> Report {
        let chromium = "/usr/bin/chromium"
        guard FileManager.default.isExecutableFile(atPath: chromium) else {
            throw ChromiumError(description: "chromium is not installed: run the README's test command, which installs it")
        }
        let page = dir.appendingPathComponent("mse.html")
        let driver = dir.appendingPathComponent("cdp.js")
        let encoded = segments.map { "'" + Data($0.readableBytesView).base64EncodedString() + "'" }.joined(separator: ",\n")
        let html = "<html><body><script>\nconst MIME = '\(mimeType)';\nconst SEGMENTS = [\(encoded)];\n\(pageScript)</script></body></html>"
        try html.write(to: page, atomically: true, encoding: .utf8)
        try driverScript.write(to: driver, atomically: true, encoding: .utf8)
        let run = try runTool("node", [driver.path, chromium, page.absoluteString,
                                       dir.appendingPathComponent("profile").path, "20000"])
        guard let line = run.output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else {
            throw ChromiumError(description: "no result from Chromium: \(run.output)")
        }
        var fields: [String: String] = [:]
        for part in line.dropFirst("RESULT ".count).split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { fields[kv[0]] = kv[1] }
        }
        return Report(status: fields["status"] ?? "", fields: fields, line: String(line))
    }

    /// Appends every segment in order, ends the stream, plays muted; reports on `ended` or the first error.
    static let pageScript = #"""
        function bytes(s) { return Uint8Array.from(atob(s), c => c.charCodeAt(0)); }
        const video = document.createElement('video');
        video.muted = true;
        document.body.appendChild(video);
        let sourceBuffer;
        function done(status) {
          if (window.__result) return;
          const ranges = [];
          try { for (let i = 0; i < sourceBuffer.buffered.length; i++) ranges.push(sourceBuffer.buffered.start(i).toFixed(3) + '-' + sourceBuffer.buffered.end(i).toFixed(3)); } catch (e) {}
          const quality = video.getVideoPlaybackQuality();
          window.__result = 'RESULT status=' + status + ' buffered=' + ranges.join(',') + ' width=' + video.videoWidth +
            ' height=' + video.videoHeight + ' currentTime=' + video.currentTime.toFixed(3) +
            ' decodedFrames=' + quality.totalVideoFrames + ' droppedFrames=' + quality.droppedVideoFrames;
        }
        if (!MediaSource.isTypeSupported(MIME)) done('unsupported');
        const source = new MediaSource();
        video.src = URL.createObjectURL(source);
        video.addEventListener('error', () => done('video-error:' + video.error.code + ':' + (video.error.message || '').replace(/ /g, '_')));
        video.addEventListener('ended', () => done('ended'));
        source.addEventListener('sourceopen', () => {
          sourceBuffer = source.addSourceBuffer(MIME);
          let next = 0;
          sourceBuffer.addEventListener('error', () => done('sourcebuffer-error'));
          sourceBuffer.addEventListener('updateend', () => {
            if (next < SEGMENTS.length) { sourceBuffer.appendBuffer(bytes(SEGMENTS[next++])); return; }
            if (source.readyState === 'open') { source.endOfStream(); video.play().catch(e => done('play-error')); }
          });
          sourceBuffer.appendBuffer(bytes(SEGMENTS[next++]));
        });
        setTimeout(() => done('timeout'), 15000);
        """#

    /// CDP over the pipe: commands on fd 3, replies on fd 4, each message NUL-terminated.
    static let driverScript = #"""
        const { spawn } = require('child_process');
        const [chrome, url, profile, timeoutMs] = process.argv.slice(2);
        const browser = spawn(chrome, ['--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe',
          '--user-data-dir=' + profile, '--autoplay-policy=no-user-gesture-required', 'about:blank'],
          { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
        const toBrowser = browser.stdio[3], fromBrowser = browser.stdio[4];
        const exited = new Promise(resolve => browser.on('exit', resolve));
        let nextID = 0, pendingText = '';
        const pending = new Map();
        fromBrowser.on('data', chunk => {
          pendingText += chunk;
          let end;
          while ((end = pendingText.indexOf('\0')) >= 0) {
            const message = JSON.parse(pendingText.slice(0, end));
            pendingText = pendingText.slice(end + 1);
            if (message.id && pending.has(message.id)) { pending.get(message.id)(message); pending.delete(message.id); }
          }
        });
        function send(method, params = {}, sessionId) {
          return new Promise(resolve => {
            const message = { id: ++nextID, method, params };
            if (sessionId) message.sessionId = sessionId;
            pending.set(message.id, resolve);
            toBrowser.write(JSON.stringify(message) + '\0');
          });
        }
        const sleep = ms => new Promise(r => setTimeout(r, ms));
        let result = 'RESULT status=driver-timeout';
        const killer = setTimeout(() => { console.log(result); browser.kill('SIGKILL'); process.exit(0); }, Number(timeoutMs) + 10000);
        (async () => {
          const target = await send('Target.createTarget', { url });
          const attached = await send('Target.attachToTarget', { targetId: target.result.targetId, flatten: true });
          const deadline = Date.now() + Number(timeoutMs);
          while (Date.now() < deadline) {
            const reply = await send('Runtime.evaluate', { expression: 'window.__result || ""', returnByValue: true }, attached.result.sessionId);
            const value = reply.result && reply.result.result && reply.result.result.value;
            if (value) { result = value; break; }
            await sleep(200);
          }
          console.log(result);
          clearTimeout(killer);
          // Wait for a clean exit: a killed browser leaves helpers that keep writing to the profile
          // directory while the test is deleting it.
          await Promise.race([send('Browser.close'), sleep(2000)]);
          await Promise.race([exited, sleep(5000)]);
          browser.kill('SIGKILL');
          process.exit(0);
        })();
        """#
}

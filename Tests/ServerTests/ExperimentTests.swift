import Foundation
import Testing
import TestSupport

/// `scripts/experiment.sh` with its short settings (5 viewers, P2P on, one 30 s run): it must write the CSV files and
/// the report, and every chart of the report must be the CSV: the same number of points, with the same values.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ExperimentTests {
    /// A CSV file as rows of named fields (the runner writes no commas inside values).
    static func csv(_ url: URL) throws -> [[String: String]] {
        let lines = try String(contentsOf: url, encoding: .utf8).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let header = try #require(lines.first).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return try lines.dropFirst().filter { !$0.isEmpty }.map { line in
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            try #require(values.count == header.count, "\(line)")
            return Dictionary(uniqueKeysWithValues: zip(header, values))
        }
    }

    struct Point: Decodable, Equatable { var x: Double; var y: Double }
    struct Dataset: Decodable { var label: String; var data: [Point] }
    struct Charts: Decodable {
        var share: [Dataset]
        var traffic: [Dataset]
        var delay: [Dataset]
        var ratio: [Double?]
    }

    static let charts = """
        const c = window.report.charts;
        const sets = (chart) => chart.data.datasets.map((d) => ({ label: d.label, data: d.data }));
        return { share: sets(c.share), traffic: sets(c.traffic), delay: sets(c.delay), ratio: c.ratio.data.datasets[0].data };
        """

    @Test func aShortRunWritesTheCSVAndAReportWhoseChartsAreTheCSV() async throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("experiment-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let started = ContinuousClock.now
        let log = try await Tool.run("bash", [Tool.checkout.appendingPathComponent("scripts/experiment.sh").path,
                                              "--binary", Tool.checkout.appendingPathComponent(".build/debug/liveswarm").path,
                                              "--viewers", "5", "--p2p", "on", "--seconds", "30", "--runs", "1", "--warmup", "10",
                                              "--out", out.path], timeout: .seconds(240))
        print("scripts/experiment.sh took \(ContinuousClock.now - started)\(log.isEmpty ? "" : ": \(log.suffix(500))")")

        let runs = try Self.csv(out.appendingPathComponent("runs.csv"))
        let samples = try Self.csv(out.appendingPathComponent("samples.csv"))
        let viewers = try Self.csv(out.appendingPathComponent("viewers.csv"))
        let run = try #require(runs.first)
        print("the run: \(run)")
        #expect(runs.count == 1 && run["viewers"] == "5" && run["p2p"] == "on" && run["pages"] == "1")
        #expect(samples.count == 30 && samples.allSatisfy { $0["run"] == run["run"] })
        #expect(viewers.count == 5 && Set(viewers.compactMap { $0["viewer"] }).count == 5)
        // Real figures: the stream made about 348 kbit/s for 30 s (1.3 MB), and the viewers shared some of it.
        let made = try #require(Double(run["made_bytes"] ?? ""))
        #expect(made > 750_000 && Double(run["demand_bytes"] ?? "") == 5 * made)
        let share = try #require(Double(run["share_media"] ?? ""))
        #expect(share > 0 && share < 0.8 + 0.01, "share of media \(share): more than the (N-1)/N ceiling is impossible")
        #expect(Double(run["ceiling"] ?? "") == 0.8)

        // The report's charts are the CSV.
        let pages = try await Conversation(script: "pages.py", ["--seconds", "60"])
        defer { Task { await pages.quit() } }
        let page = try #require(try await pages.ask(["cmd": "open", "url": out.appendingPathComponent("report.html").absoluteString])["page"] as? Int)
        let value = try #require(try await pages.eval(page, Self.charts))
        let charts = try JSONDecoder().decode(Charts.self, from: JSONSerialization.data(withJSONObject: value))
        let id = try #require(run["run"])
        func column(_ name: String) -> [Point] { samples.map { Point(x: Double($0["second"]!)!, y: Double($0[name]!)!) } }
        let origin = try #require(charts.traffic.first { $0.label == "\(id) origin" })
        let peers = try #require(charts.traffic.first { $0.label == "\(id) peers" })
        #expect(origin.data.count == 30 && origin.data == column("origin_kbps"))
        #expect(peers.data.count == 30 && peers.data == column("peer_kbps"))
        let mean = try #require(charts.share.first { $0.label == "share of media, mean" })
        #expect(mean.data == [Point(x: 5, y: (share * 10000).rounded() / 100)])
        let withPlaylists = try #require(charts.share.first { $0.label == "share counting playlists, mean" })
        #expect(withPlaylists.data == [Point(x: 5, y: (Double(run["share_all"]!)! * 10000).rounded() / 100)])
        #expect(charts.ratio == [Double(run["ratio_to_ceiling"] ?? "")])
        let delays = viewers.compactMap { Double($0["median_delay"] ?? "") }.sorted()
        let cdf = try #require(charts.delay.first)
        #expect(cdf.data.map(\.x) == delays && cdf.data.last?.y == 1)
        let errors = try await pages.ask(["cmd": "errors", "page": page])["errors"] as? [Any] ?? []
        #expect(errors.isEmpty, "\(errors)")

        // And the pictures of them.
        for png in ["share", "traffic", "delay", "stalls", "ratio", "report"] {
            let bytes = try Data(contentsOf: out.appendingPathComponent("\(png).png"))
            #expect(bytes.count > 2000 && bytes.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "\(png).png")
        }
    }
}

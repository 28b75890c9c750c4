import NIOCore
import Testing
import TestSupport
@testable import MP4

/// A sample whose bytes identify it: `count` copies of `tag`.
func sample(_ tag: UInt8, count: Int = 10, duration: UInt32 = 3000, offset: Int32 = 0, sync: Bool = false) -> Sample {
    Sample(duration: duration, compositionOffset: offset, isSync: sync, data: ByteBuffer(repeating: tag, count: count))
}

struct ParsedFragment {
    var moof: TestBox
    var mdat: TestBox
    var runs: [(trackID: UInt32, baseMediaDecodeTime: UInt64, trun: TestBox, dataOffset: Int32, samples: [TestRunSample])]
}

/// Parses moof + mdat starting at `start` and checks the invariants every fragment must hold.
func parseFragment(_ out: ByteBuffer, start: Int = 0) throws -> ParsedFragment {
    let all = bytes(out)
    let boxes = try parseBoxes(all, from: start)
    #expect(boxes.map(\.type) == ["moof", "mdat"])
    let moof = boxes[0], mdat = boxes[1]
    #expect(moof.childTypes.first == "mfhd")
    var runs: [(UInt32, UInt64, TestBox, Int32, [TestRunSample])] = []
    var expectedOffset = Int32(moof.size + 8)
    for traf in moof.children("traf") {
        #expect(traf.childTypes == ["tfhd", "tfdt", "trun"])
        let tfhd = try #require(traf["tfhd"]), tfdt = try #require(traf["tfdt"]), trun = try #require(traf["trun"])
        #expect(tfhd.flags == 0x02_0000 && tfhd.payload.count == 8)
        #expect(tfdt.version == 1 && tfdt.payload.count == 12)
        #expect(trun.version == 1)
        let (dataOffset, samples) = try parseTrun(trun)
        let offset = try #require(dataOffset)
        // Runs are laid out back to back in the one mdat, starting right after its header.
        #expect(offset == expectedOffset)
        expectedOffset += Int32(samples.reduce(0) { $0 + Int($1.size) })
        runs.append((tfhd.u32(4), tfdt.u64(4), trun, offset, samples))
    }
    #expect(Int(expectedOffset) == moof.size + mdat.size, "sample sizes must add up to the mdat payload")
    return ParsedFragment(moof: moof, mdat: mdat, runs: runs)
}

@Suite struct FragmentTests {
    @Test func videoAndAudioRuns() throws {
        let video = TrackRun(trackID: 1, baseMediaDecodeTime: 180_000, samples: [
            sample(1, count: 50, offset: 6000, sync: true),
            sample(2, count: 20, offset: 12000),
            sample(3, count: 5, offset: -3000),   // negative offsets need trun version 1
        ])
        let audio = TrackRun(trackID: 2, baseMediaDecodeTime: 0x1_0000_0400, samples: [
            sample(4, count: 7, duration: 1024, sync: true),
            sample(5, count: 9, duration: 1024, sync: true),
        ])
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: 42, runs: [video, audio], to: &out)
        let f = try parseFragment(out)

        #expect(f.moof.childTypes == ["mfhd", "traf", "traf"])
        #expect(f.moof["mfhd"]?.u32(4) == 42)
        #expect(f.runs.map(\.trackID) == [1, 2])
        #expect(f.runs.map(\.baseMediaDecodeTime) == [180_000, 0x1_0000_0400])

        let v = f.runs[0].samples
        #expect(f.runs[0].trun.flags == 0x000F01)
        #expect(v.map(\.duration) == [3000, 3000, 3000])
        #expect(v.map(\.size) == [50, 20, 5])
        #expect(v.map(\.flags) == [0x0200_0000, 0x0101_0000, 0x0101_0000])
        #expect(v.map(\.compositionOffset) == [6000, 12000, -3000])

        // Audio has no reordering, so no composition offsets are written.
        let a = f.runs[1].samples
        #expect(f.runs[1].trun.flags == 0x000701)
        #expect(a.map(\.duration) == [1024, 1024] && a.map(\.size) == [7, 9])
        #expect(a.allSatisfy { $0.flags == 0x0200_0000 && $0.compositionOffset == nil })

        // data_offset points at each run's first byte.
        let all = bytes(out)
        #expect(all[Int(f.runs[0].dataOffset)] == 1 && all[Int(f.runs[0].dataOffset) + 50] == 2)
        #expect(Array(all[Int(f.runs[1].dataOffset)...]) == [UInt8](repeating: 4, count: 7) + [UInt8](repeating: 5, count: 9))
        #expect(f.mdat.payloadOffset == Int(f.runs[0].dataOffset))
    }

    @Test func dataOffsetIsRelativeToMoofNotToTheBuffer() throws {
        var out = ByteBuffer(repeating: 0xEE, count: 333)
        Fragment.write(sequenceNumber: 1, runs: [TrackRun(trackID: 1, baseMediaDecodeTime: 0, samples: [sample(9, sync: true)])], to: &out)
        let f = try parseFragment(out, start: 333)
        #expect(f.runs[0].dataOffset == Int32(f.moof.size + 8))
        #expect(bytes(out)[333 + Int(f.runs[0].dataOffset)] == 9)
    }

    @Test func emptyRunsGetNoTraf() throws {
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: 3, runs: [
            TrackRun(trackID: 1, baseMediaDecodeTime: 0, samples: []),
            TrackRun(trackID: 2, baseMediaDecodeTime: 0, samples: [sample(1, sync: true)]),
        ], to: &out)
        let f = try parseFragment(out)
        #expect(f.runs.map(\.trackID) == [2])

        var empty = ByteBuffer()
        Fragment.write(sequenceNumber: 4, runs: [], to: &empty)
        let e = try parseFragment(empty)
        #expect(e.moof.childTypes == ["mfhd"] && e.mdat.size == 8)
    }

    @Test func extremeFieldValuesRoundTrip() throws {
        let run = TrackRun(trackID: .max, baseMediaDecodeTime: .max, samples: [
            Sample(duration: .max, compositionOffset: .min, isSync: false, data: ByteBuffer()),
            Sample(duration: 0, compositionOffset: .max, isSync: true, data: ByteBuffer(bytes: [1])),
        ])
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: .max, runs: [run], to: &out)
        let f = try parseFragment(out)
        #expect(f.moof["mfhd"]?.u32(4) == .max)
        #expect(f.runs[0].trackID == .max && f.runs[0].baseMediaDecodeTime == .max)
        #expect(f.runs[0].samples == [
            TestRunSample(duration: .max, size: 0, flags: 0x0101_0000, compositionOffset: .min),
            TestRunSample(duration: 0, size: 1, flags: 0x0200_0000, compositionOffset: .max),
        ])
    }

    @Test func readerIndexOfSampleDataIsRespected() throws {
        var data = ByteBuffer(bytes: [0, 0, 7, 8])
        data.moveReaderIndex(forwardBy: 2)
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: 1, runs: [TrackRun(trackID: 1, baseMediaDecodeTime: 0,
            samples: [Sample(duration: 1, isSync: true, data: data)])], to: &out)
        let f = try parseFragment(out)
        #expect(f.runs[0].samples.map(\.size) == [2])
        #expect(f.mdat.payload == [7, 8])
    }

    /// The 2 GiB clamp, exercised with a small limit: whole samples are admitted in decode order
    /// until one does not fit, and nothing after it.
    @Test func oversizedFragmentIsClampedToWholeSamples() throws {
        let runs = [
            TrackRun(trackID: 1, baseMediaDecodeTime: 0, samples: [sample(1, count: 100), sample(2, count: 100), sample(3, count: 100)]),
            TrackRun(trackID: 2, baseMediaDecodeTime: 0, samples: [sample(4, count: 1)]),
        ]
        // Fixed 32 + run 64 + two samples of 116 = 328: the third sample does not fit.
        let limit = 32 + 64 + 2 * 116 + 50
        #expect(Fragment.admittedSampleCounts(runs, byteLimit: limit).counts == [2, 0])
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: 1, runs: runs, to: &out, byteLimit: limit)
        #expect(out.readableBytes <= limit)
        let f = try parseFragment(out)
        #expect(f.runs.count == 1 && f.runs[0].samples.count == 2)

        var nothing = ByteBuffer()
        Fragment.write(sequenceNumber: 1, runs: runs, to: &nothing, byteLimit: 10)
        #expect(nothing.readableBytes == 0)
    }

    @Test func sizeBoundCoversTheWrittenBytes() throws {
        let runs = [
            TrackRun(trackID: 1, baseMediaDecodeTime: 0, samples: (0..<20).map { sample(UInt8($0), count: $0, offset: Int32($0)) }),
            TrackRun(trackID: 2, baseMediaDecodeTime: 0, samples: (0..<5).map { sample(UInt8($0), count: 3) }),
        ]
        let bound = Fragment.admittedSampleCounts(runs, byteLimit: .max).total
        var out = ByteBuffer()
        Fragment.write(sequenceNumber: 1, runs: runs, to: &out)
        // The bound counts four trun fields per sample; the audio run has no composition offsets.
        #expect(out.readableBytes == bound - 5 * 4)
    }

    /// Random runs (counts, sizes, offsets, flags, byte limits) always give a fragment whose offsets,
    /// sizes and sample bytes agree, and never trap.
    @Test func randomRunsKeepTheirInvariants() throws {
        var rng = SplitMix64(state: 0x6D6F_6F66)
        for round in 0..<300 {
            let runs = (0..<Int.random(in: 0...4, using: &rng)).map { run in
                TrackRun(trackID: UInt32(run + 1), baseMediaDecodeTime: rng.next(),
                         samples: (0..<Int.random(in: 0...12, using: &rng)).map { _ in
                             Sample(duration: UInt32.random(in: 0...UInt32.max, using: &rng),
                                    compositionOffset: Bool.random(using: &rng) ? 0 : Int32.random(in: .min ... .max, using: &rng),
                                    isSync: Bool.random(using: &rng),
                                    data: ByteBuffer(repeating: UInt8(truncatingIfNeeded: round), count: Int.random(in: 0...300, using: &rng)))
                         })
            }
            let limit = Bool.random(using: &rng) ? Int.random(in: 0...2000, using: &rng) : Int(Int32.max)
            var out = ByteBuffer()
            Fragment.write(sequenceNumber: UInt32(round), runs: runs, to: &out, byteLimit: limit)
            if out.readableBytes == 0 {
                #expect(limit < Fragment.fixedOverhead)
                continue
            }
            #expect(out.readableBytes <= limit)
            let f = try parseFragment(out)
            let counts = Fragment.admittedSampleCounts(runs, byteLimit: limit).counts
            let written = zip(runs, counts).filter { $0.1 > 0 }
            #expect(f.runs.map(\.trackID) == written.map(\.0.trackID))
            for (parsed, (run, count)) in zip(f.runs, written) {
                #expect(parsed.baseMediaDecodeTime == run.baseMediaDecodeTime)
                #expect(parsed.samples.map(\.size) == run.samples.prefix(count).map { UInt32($0.data.readableBytes) })
                #expect(parsed.samples.map(\.duration) == run.samples.prefix(count).map(\.duration))
                #expect(parsed.samples.map { $0.flags == 0x0200_0000 } == run.samples.prefix(count).map(\.isSync))
            }
        }
    }
}

import NIOCore

/// A media fragment / CMAF chunk: `moof` + one `mdat`, ISO/IEC 14496-12 8.8.4.
///
/// ```
/// moof
///   mfhd                 sequence_number
///   traf (per run)
///     tfhd               flags default-base-is-moof: offsets count from the start of moof
///     tfdt  version 1    64-bit baseMediaDecodeTime
///     trun  version 1    per sample: duration, size, flags[, signed composition offset]
/// mdat                   every run's sample bytes, run after run
/// ```
public enum Fragment {
    // tf_flags, 8.8.7.1.
    static let defaultBaseIsMoof: UInt32 = 0x02_0000
    // tr_flags, 8.8.8.1.
    static let dataOffsetPresent: UInt32 = 0x00_0001
    static let sampleDurationPresent: UInt32 = 0x00_0100
    static let sampleSizePresent: UInt32 = 0x00_0200
    static let sampleFlagsPresent: UInt32 = 0x00_0400
    static let sampleCompositionTimeOffsetPresent: UInt32 = 0x00_0800

    /// sample_flags (8.8.3.1) of a random access point: sample_depends_on 2 (depends on no other sample).
    static let syncSampleFlags: UInt32 = 0x0200_0000
    /// sample_flags of any other sample: sample_depends_on 1 and sample_is_non_sync_sample.
    static let nonSyncSampleFlags: UInt32 = 0x0101_0000

    /// Bytes the boxes take besides the runs: moof and mdat headers (8 each) and mfhd (16).
    static let fixedOverhead = 8 + 16 + 8
    /// Bytes one traf takes besides its samples: traf (8), tfhd (16), tfdt v1 (20), trun header (20).
    static let runOverhead = 8 + 16 + 20 + 20
    /// Upper bound of the trun entry of one sample.
    static let sampleOverhead = 16

    /// Appends `moof` + `mdat` holding `runs`: one `traf` per run with samples, in the given order.
    ///
    /// Runs without samples get no `traf`. `data_offset` is a signed 32-bit field and a ByteBuffer
    /// ends at 4 GiB, so a fragment is clamped to 2 GiB (and to what `to` can still hold): samples
    /// past that are left out. A live fragment is a fraction of a second, so this never happens in
    /// practice; the clamp only guarantees that no input can trap.
    public static func write(sequenceNumber: UInt32, runs: [TrackRun], to buffer: inout ByteBuffer) {
        let limit = min(Int(Int32.max), Int(UInt32.max) &- buffer.writerIndex)
        write(sequenceNumber: sequenceNumber, runs: runs, to: &buffer, byteLimit: limit)
    }

    /// `write` with an explicit size limit, so the clamp can be tested without gigabytes of samples.
    static func write(sequenceNumber: UInt32, runs: [TrackRun], to buffer: inout ByteBuffer, byteLimit: Int) {
        let (counts, total) = admittedSampleCounts(runs, byteLimit: byteLimit)
        guard total <= byteLimit else { return }
        buffer.reserveCapacity(minimumWritableBytes: total)

        let moofStart = buffer.writerIndex
        var dataOffsetPositions: [Int] = []
        var payloadSizes: [Int] = []
        buffer.writeBox("moof") { moof in
            moof.writeFullBox("mfhd", version: 0, flags: 0) { $0.writeInteger(sequenceNumber) }
            for (run, count) in zip(runs, counts) where count > 0 {
                let samples = run.samples.prefix(count)
                moof.writeBox("traf") { traf in
                    traf.writeFullBox("tfhd", version: 0, flags: defaultBaseIsMoof) { $0.writeInteger(run.trackID) }
                    traf.writeFullBox("tfdt", version: 1, flags: 0) { $0.writeInteger(run.baseMediaDecodeTime) }
                    // Composition offsets only when some sample is reordered: audio and B-frame-free
                    // video save four bytes per sample.
                    let hasOffsets = samples.contains { $0.compositionOffset != 0 }
                    var flags = dataOffsetPresent | sampleDurationPresent | sampleSizePresent | sampleFlagsPresent
                    if hasOffsets { flags |= sampleCompositionTimeOffsetPresent }
                    // Version 1 makes sample_composition_time_offset signed (8.8.8.2).
                    traf.writeFullBox("trun", version: 1, flags: flags) { trun in
                        trun.writeInteger(UInt32(truncatingIfNeeded: count))
                        dataOffsetPositions.append(trun.writerIndex)
                        trun.writeInteger(Int32(0))   // data_offset, patched once the moof size is known
                        var payload = 0
                        for sample in samples {
                            trun.writeInteger(sample.duration)
                            trun.writeInteger(UInt32(truncatingIfNeeded: sample.data.readableBytes))
                            trun.writeInteger(sample.isSync ? syncSampleFlags : nonSyncSampleFlags)
                            if hasOffsets { trun.writeInteger(sample.compositionOffset) }
                            payload += sample.data.readableBytes
                        }
                        payloadSizes.append(payload)
                    }
                }
            }
        }

        // default-base-is-moof: each run's data_offset counts from the first byte of moof.
        var offset = buffer.writerIndex &- moofStart &+ 8
        for (position, size) in zip(dataOffsetPositions, payloadSizes) {
            buffer.setInteger(Int32(truncatingIfNeeded: offset), at: position)
            offset &+= size
        }

        buffer.writeBox("mdat") { mdat in
            for (run, count) in zip(runs, counts) where count > 0 {
                for sample in run.samples.prefix(count) {
                    mdat.writeImmutableBuffer(sample.data)
                }
            }
        }
    }

    /// How many leading samples of each run fit in `byteLimit`, and the fragment's size bound.
    /// Once one sample does not fit, nothing after it is admitted, so decode order stays intact.
    static func admittedSampleCounts(_ runs: [TrackRun], byteLimit: Int) -> (counts: [Int], total: Int) {
        var total = fixedOverhead
        var full = total > byteLimit
        var counts: [Int] = []
        counts.reserveCapacity(runs.count)
        for run in runs {
            var count = 0
            var runTotal = total &+ runOverhead
            if !full && !run.samples.isEmpty {
                for sample in run.samples {
                    let cost = sampleOverhead &+ sample.data.readableBytes
                    guard runTotal &+ cost <= byteLimit else {
                        full = true
                        break
                    }
                    runTotal &+= cost
                    count &+= 1
                }
                if count > 0 { total = runTotal }
            }
            counts.append(count)
        }
        return (counts, total)
    }
}

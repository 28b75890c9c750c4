import NIOCore

/// The initialization segment of a fragmented MP4 / CMAF stream: `ftyp` + `moov` with empty
/// sample tables and an `mvex`, ISO/IEC 14496-12 8.8.1 (movie fragments) and ISO/IEC 23000-19
/// 7.3.1 (CMAF header). Samples only ever arrive in `Fragment`s.
///
/// ```
/// ftyp
/// moov
///   mvhd
///   trak (per track)
///     tkhd
///     mdia
///       mdhd, hdlr
///       minf
///         vmhd | smhd
///         dinf > dref > url
///         stbl > stsd (avc1 | mp4a), stts, stsc, stsz, stco   (all empty)
///   mvex
///     trex (per track)
/// ```
public enum InitSegment {
    /// `iso6` is the first brand that allows everything written here (tfdt v1, trun v1 with signed
    /// composition offsets); `cmfc` lets CMAF-aware players recognise the layout.
    static let majorBrand = "iso6"
    static let compatibleBrands = ["iso6", "cmfc", "isom", "mp41"]
    /// Movie timescale for `mvhd`; only durations at movie level use it, and those are all 0.
    static let movieTimescale: UInt32 = 1000
    /// ISO 639-2/T "und" packed as three 5-bit letters (each minus 0x60), ISO/IEC 14496-12 8.4.2.3.
    static let undeterminedLanguage: UInt16 = (0x75 - 0x60) << 10 | (0x6E - 0x60) << 5 | (0x64 - 0x60)

    /// Appends `ftyp` + `moov` describing `tracks`, in the given order.
    ///
    /// Everything is validated before the first byte is written, so on error `to` is untouched.
    public static func write(tracks: [Track], to buffer: inout ByteBuffer) throws(MP4Error) {
        guard !tracks.isEmpty else { throw .noTracks }
        var seen = Set<UInt32>()
        var entries: [SampleEntry] = []
        for track in tracks {
            guard track.id != 0, seen.insert(track.id).inserted else { throw .invalidTrackID(track.id) }
            guard track.timescale != 0 else { throw .zeroTimescale(trackID: track.id) }
            entries.append(try SampleEntry(track))
        }

        buffer.writeBox("ftyp") { ftyp in
            ftyp.writeFourCC(majorBrand)
            ftyp.writeInteger(UInt32(0))   // minor_version
            for brand in compatibleBrands { ftyp.writeFourCC(brand) }
        }
        buffer.writeBox("moov") { moov in
            writeMovieHeader(nextTrackID: tracks.map(\.id).max() ?? 0, to: &moov)
            for (track, entry) in zip(tracks, entries) {
                writeTrack(track, entry: entry, to: &moov)
            }
            moov.writeBox("mvex") { mvex in
                for track in tracks {
                    // trex, 8.8.3: defaults stay 0 because every trun carries explicit per-sample values.
                    mvex.writeFullBox("trex", version: 0, flags: 0) { trex in
                        trex.writeInteger(track.id)
                        trex.writeInteger(UInt32(1))   // default_sample_description_index: the only stsd entry
                        trex.writeInteger(UInt32(0))   // default_sample_duration
                        trex.writeInteger(UInt32(0))   // default_sample_size
                        trex.writeInteger(UInt32(0))   // default_sample_flags
                    }
                }
            }
        }
    }

    /// `mvhd` version 0, 8.2.2.
    private static func writeMovieHeader(nextTrackID maxID: UInt32, to buffer: inout ByteBuffer) {
        buffer.writeFullBox("mvhd", version: 0, flags: 0) { mvhd in
            mvhd.writeInteger(UInt32(0))              // creation_time
            mvhd.writeInteger(UInt32(0))              // modification_time
            mvhd.writeInteger(movieTimescale)
            mvhd.writeInteger(UInt32(0))              // duration: unknown, the movie is fragmented
            mvhd.writeInteger(UInt32(0x0001_0000))    // rate 1.0
            mvhd.writeInteger(UInt16(0x0100))         // volume 1.0
            mvhd.writeRepeatingByte(0, count: 2 + 8)  // reserved
            mvhd.writeUnityMatrix()
            mvhd.writeRepeatingByte(0, count: 24)     // pre_defined[6]
            // All ones is the spec's "search for a free ID" value, the right answer when max + 1 overflows.
            mvhd.writeInteger(maxID == .max ? .max : maxID + 1)
        }
    }

    private static func writeTrack(_ track: Track, entry: SampleEntry, to buffer: inout ByteBuffer) {
        buffer.writeBox("trak") { trak in
            // tkhd version 0, 8.3.2; flags track_enabled | track_in_movie.
            trak.writeFullBox("tkhd", version: 0, flags: 0x000003) { tkhd in
                tkhd.writeInteger(UInt32(0))              // creation_time
                tkhd.writeInteger(UInt32(0))              // modification_time
                tkhd.writeInteger(track.id)
                tkhd.writeInteger(UInt32(0))              // reserved
                tkhd.writeInteger(UInt32(0))              // duration
                tkhd.writeRepeatingByte(0, count: 8)      // reserved[2]
                tkhd.writeInteger(UInt16(0))              // layer
                tkhd.writeInteger(UInt16(0))              // alternate_group
                tkhd.writeInteger(UInt16(entry.isVideo ? 0 : 0x0100))   // volume: 1.0 for audio only
                tkhd.writeInteger(UInt16(0))              // reserved
                tkhd.writeUnityMatrix()
                let (width, height) = entry.dimensions
                tkhd.writeInteger(UInt32(width) << 16)    // 16.16 fixed point
                tkhd.writeInteger(UInt32(height) << 16)
            }
            trak.writeBox("mdia") { mdia in
                // mdhd version 0, 8.4.2.
                mdia.writeFullBox("mdhd", version: 0, flags: 0) { mdhd in
                    mdhd.writeInteger(UInt32(0))          // creation_time
                    mdhd.writeInteger(UInt32(0))          // modification_time
                    mdhd.writeInteger(track.timescale)
                    mdhd.writeInteger(UInt32(0))          // duration
                    mdhd.writeInteger(undeterminedLanguage)
                    mdhd.writeInteger(UInt16(0))          // pre_defined
                }
                // hdlr, 8.4.3.
                mdia.writeFullBox("hdlr", version: 0, flags: 0) { hdlr in
                    hdlr.writeInteger(UInt32(0))          // pre_defined
                    hdlr.writeFourCC(entry.handlerType)
                    hdlr.writeRepeatingByte(0, count: 12) // reserved[3]
                    hdlr.writeString(entry.isVideo ? "VideoHandler" : "SoundHandler")
                    hdlr.writeInteger(UInt8(0))           // name is null-terminated
                }
                mdia.writeBox("minf") { minf in
                    writeMediaHeader(video: entry.isVideo, to: &minf)
                    // dinf/dref with one self-contained entry (flags 1): the samples are in this file.
                    minf.writeBox("dinf") { dinf in
                        dinf.writeFullBox("dref", version: 0, flags: 0) { dref in
                            dref.writeInteger(UInt32(1))
                            dref.writeFullBox("url ", version: 0, flags: 1) { _ in }
                        }
                    }
                    writeSampleTable(entry: entry, to: &minf)
                }
            }
        }
    }

    /// `vmhd` (12.1.2, flags 1 as required) or `smhd` (12.2.2).
    private static func writeMediaHeader(video: Bool, to buffer: inout ByteBuffer) {
        if video {
            buffer.writeFullBox("vmhd", version: 0, flags: 1) { vmhd in
                vmhd.writeRepeatingByte(0, count: 2 + 6)   // graphicsmode copy, opcolor
            }
        } else {
            buffer.writeFullBox("smhd", version: 0, flags: 0) { smhd in
                smhd.writeInteger(UInt16(0))               // balance: centre
                smhd.writeInteger(UInt16(0))               // reserved
            }
        }
    }

    /// `stbl`, 8.1.1: the sample description plus the mandatory tables, all empty because the
    /// samples live in fragments (8.8.1).
    private static func writeSampleTable(entry: SampleEntry, to buffer: inout ByteBuffer) {
        buffer.writeBox("stbl") { stbl in
            stbl.writeFullBox("stsd", version: 0, flags: 0) { stsd in
                stsd.writeInteger(UInt32(1))
                entry.write(to: &stsd)
            }
            stbl.writeFullBox("stts", version: 0, flags: 0) { $0.writeInteger(UInt32(0)) }
            stbl.writeFullBox("stsc", version: 0, flags: 0) { $0.writeInteger(UInt32(0)) }
            stbl.writeFullBox("stsz", version: 0, flags: 0) { stsz in
                stsz.writeInteger(UInt32(0))   // sample_size: sizes would follow per sample
                stsz.writeInteger(UInt32(0))   // sample_count
            }
            stbl.writeFullBox("stco", version: 0, flags: 0) { $0.writeInteger(UInt32(0)) }
        }
    }
}

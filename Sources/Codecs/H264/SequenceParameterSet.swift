extension H264 {
    /// The parts of a sequence parameter set a server needs: identity, picture size and frame rate.
    public struct SequenceParameterSet: Sendable, Equatable {
        /// `profile_idc`.
        public var profileIdc: UInt8
        /// The byte holding `constraint_set0_flag`...`constraint_set5_flag` and two reserved bits.
        public var constraintFlags: UInt8
        /// `level_idc`.
        public var levelIdc: UInt8
        /// `seq_parameter_set_id` (0...31).
        public var id: UInt32
        /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
        public var chromaFormatIdc: UInt32
        /// Luma bit depth (8 + `bit_depth_luma_minus8`).
        public var bitDepthLuma: Int
        /// Chroma bit depth (8 + `bit_depth_chroma_minus8`).
        public var bitDepthChroma: Int
        /// `frame_mbs_only_flag`; false means the stream may contain fields (interlaced).
        public var frameMbsOnly: Bool
        /// Displayed width in luma samples, after frame cropping.
        public var width: Int
        /// Displayed height in luma samples, after frame cropping.
        public var height: Int
        /// `time_scale / (2 * num_units_in_tick)` from the VUI, or nil when timing info is absent.
        public var frameRate: Double?

        /// Profiles whose SPS carries chroma_format_idc, bit depths and scaling lists
        /// (ITU-T H.264 7.3.2.1.1, the `if( profile_idc == 100 || ...` branch).
        static let highProfiles: Set<UInt8> = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]

        /// A sanity cap far above any level limit (level 6.2 allows 139264 macroblocks per frame),
        /// so size arithmetic stays small and absurd headers are rejected.
        static let maxDimensionInMbs: UInt32 = 0xFFFF

        /// Parses `seq_parameter_set_rbsp()`, ITU-T H.264 7.3.2.1.1 (with VUI from E.1.1, read up
        /// to and including `timing_info`; everything after it is irrelevant here and skipped).
        ///
        /// `nal` is the whole NAL unit including its one-byte header. Subset SPS (type 15, used by
        /// SVC/MVC profiles 83/86/118/128...) is accepted because it starts with the same
        /// `seq_parameter_set_data()`.
        public init(parsing nal: [UInt8]) throws(CodecError) {
            guard let header = nal.first else { throw .truncated("NAL header") }
            guard header & 0x80 == 0 else { throw .invalid("forbidden_zero_bit set") }
            let type = header & 0x1F
            guard type == NALUnitType.sps.rawValue || type == NALUnitType.subsetSPS.rawValue else {
                throw .invalid("NAL unit type \(type) is not an SPS")
            }
            var r = BitReader(H264.removingEmulationPrevention(Array(nal.dropFirst())))

            profileIdc = UInt8(try r.bits(8, "profile_idc"))
            constraintFlags = UInt8(try r.bits(8, "constraint_set_flags"))
            levelIdc = UInt8(try r.bits(8, "level_idc"))
            id = try r.ue("seq_parameter_set_id")
            guard id <= 31 else { throw .invalid("seq_parameter_set_id \(id)") }

            chromaFormatIdc = 1
            var separateColourPlane = false
            bitDepthLuma = 8
            bitDepthChroma = 8
            if Self.highProfiles.contains(profileIdc) {
                chromaFormatIdc = try r.ue("chroma_format_idc")
                guard chromaFormatIdc <= 3 else { throw .invalid("chroma_format_idc \(chromaFormatIdc)") }
                if chromaFormatIdc == 3 {
                    separateColourPlane = try r.bit("separate_colour_plane_flag")
                }
                let lumaMinus8 = try r.ue("bit_depth_luma_minus8")
                guard lumaMinus8 <= 6 else { throw .invalid("bit_depth_luma_minus8 \(lumaMinus8)") }
                let chromaMinus8 = try r.ue("bit_depth_chroma_minus8")
                guard chromaMinus8 <= 6 else { throw .invalid("bit_depth_chroma_minus8 \(chromaMinus8)") }
                bitDepthLuma = 8 + Int(lumaMinus8)
                bitDepthChroma = 8 + Int(chromaMinus8)
                _ = try r.bit("qpprime_y_zero_transform_bypass_flag")
                if try r.bit("seq_scaling_matrix_present_flag") {
                    let lists = chromaFormatIdc == 3 ? 12 : 8
                    for i in 0..<lists {
                        if try r.bit("seq_scaling_list_present_flag") {
                            try Self.skipScalingList(&r, size: i < 6 ? 16 : 64)
                        }
                    }
                }
            }

            let log2MaxFrameNumMinus4 = try r.ue("log2_max_frame_num_minus4")
            guard log2MaxFrameNumMinus4 <= 12 else { throw .invalid("log2_max_frame_num_minus4 \(log2MaxFrameNumMinus4)") }
            let pocType = try r.ue("pic_order_cnt_type")
            switch pocType {
            case 0:
                let lsb = try r.ue("log2_max_pic_order_cnt_lsb_minus4")
                guard lsb <= 12 else { throw .invalid("log2_max_pic_order_cnt_lsb_minus4 \(lsb)") }
            case 1:
                _ = try r.bit("delta_pic_order_always_zero_flag")
                _ = try r.se("offset_for_non_ref_pic")
                _ = try r.se("offset_for_top_to_bottom_field")
                let cycle = try r.ue("num_ref_frames_in_pic_order_cnt_cycle")
                guard cycle <= 255 else { throw .invalid("num_ref_frames_in_pic_order_cnt_cycle \(cycle)") }
                for _ in 0..<cycle { _ = try r.se("offset_for_ref_frame") }
            case 2:
                break
            default:
                throw .invalid("pic_order_cnt_type \(pocType)")
            }
            _ = try r.ue("max_num_ref_frames")
            _ = try r.bit("gaps_in_frame_num_value_allowed_flag")
            let widthInMbsMinus1 = try r.ue("pic_width_in_mbs_minus1")
            let heightInMapUnitsMinus1 = try r.ue("pic_height_in_map_units_minus1")
            guard widthInMbsMinus1 < Self.maxDimensionInMbs, heightInMapUnitsMinus1 < Self.maxDimensionInMbs else {
                throw .invalid("picture size \(widthInMbsMinus1 &+ 1)x\(heightInMapUnitsMinus1 &+ 1) macroblocks")
            }
            frameMbsOnly = try r.bit("frame_mbs_only_flag")
            if !frameMbsOnly {
                _ = try r.bit("mb_adaptive_frame_field_flag")
            }
            _ = try r.bit("direct_8x8_inference_flag")
            var crop: (left: UInt32, right: UInt32, top: UInt32, bottom: UInt32) = (0, 0, 0, 0)
            if try r.bit("frame_cropping_flag") {
                crop.left = try r.ue("frame_crop_left_offset")
                crop.right = try r.ue("frame_crop_right_offset")
                crop.top = try r.ue("frame_crop_top_offset")
                crop.bottom = try r.ue("frame_crop_bottom_offset")
            }

            // Cropping units, 7.4.2.1.1 (frame_crop_*_offset semantics and Table 6-1).
            let chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc
            let fieldFactor = frameMbsOnly ? 1 : 2
            let subWidthC = chromaArrayType == 3 ? 1 : 2
            let subHeightC = chromaArrayType == 1 ? 2 : 1
            let cropUnitX = chromaArrayType == 0 ? 1 : subWidthC
            let cropUnitY = (chromaArrayType == 0 ? 1 : subHeightC) * fieldFactor
            // All terms are < 2^36, so plain Int (64-bit) arithmetic cannot overflow.
            let codedWidth = (Int(widthInMbsMinus1) + 1) * 16
            let codedHeight = (Int(heightInMapUnitsMinus1) + 1) * 16 * fieldFactor
            let width = codedWidth - cropUnitX * (Int(crop.left) + Int(crop.right))
            let height = codedHeight - cropUnitY * (Int(crop.top) + Int(crop.bottom))
            guard width > 0, height > 0 else {
                throw .invalid("frame cropping removes the whole \(codedWidth)x\(codedHeight) picture")
            }
            self.width = width
            self.height = height

            frameRate = nil
            if try r.bit("vui_parameters_present_flag") {
                frameRate = try Self.parseVUITiming(&r)
            }
        }

        /// `scaling_list()`, 7.3.2.1.1.1. Only skipped, but it must be walked exactly because
        /// the number of deltas depends on their values (a zero nextScale ends the list).
        private static func skipScalingList(_ r: inout BitReader, size: Int) throws(CodecError) {
            var lastScale: Int32 = 8
            var nextScale: Int32 = 8
            for _ in 0..<size {
                if nextScale != 0 {
                    let delta = try r.se("delta_scale")
                    guard delta >= -128 && delta <= 127 else { throw .invalid("delta_scale \(delta)") }
                    nextScale = (lastScale + delta + 256) % 256
                }
                if nextScale != 0 { lastScale = nextScale }
            }
        }

        /// `vui_parameters()` up to `timing_info`, E.1.1.
        private static func parseVUITiming(_ r: inout BitReader) throws(CodecError) -> Double? {
            if try r.bit("aspect_ratio_info_present_flag") {
                let idc = try r.bits(8, "aspect_ratio_idc")
                if idc == 255 {   // Extended_SAR
                    try r.skip(32, "sar_width/sar_height")
                }
            }
            if try r.bit("overscan_info_present_flag") {
                _ = try r.bit("overscan_appropriate_flag")
            }
            if try r.bit("video_signal_type_present_flag") {
                try r.skip(4, "video_format/video_full_range_flag")
                if try r.bit("colour_description_present_flag") {
                    try r.skip(24, "colour_description")
                }
            }
            if try r.bit("chroma_loc_info_present_flag") {
                _ = try r.ue("chroma_sample_loc_type_top_field")
                _ = try r.ue("chroma_sample_loc_type_bottom_field")
            }
            guard try r.bit("timing_info_present_flag") else { return nil }
            let unitsInTick = try r.bits(32, "num_units_in_tick")
            let timeScale = try r.bits(32, "time_scale")
            // Both are required to be > 0; a zero is treated as "no usable timing" rather than an error
            // because the picture size, which callers rely on more, is still valid.
            guard unitsInTick > 0, timeScale > 0 else { return nil }
            return Double(timeScale) / (2 * Double(unitsInTick))
        }
    }
}

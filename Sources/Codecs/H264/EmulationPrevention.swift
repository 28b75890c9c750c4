extension H264 {
    /// Removes emulation_prevention_three_byte (ITU-T H.264 7.4.1): in a NAL unit every
    /// `00 00 03` stands for `00 00`, so the 03 has to go before bit-level parsing.
    static func removingEmulationPrevention(_ nal: [UInt8]) -> [UInt8] {
        var rbsp: [UInt8] = []
        rbsp.reserveCapacity(nal.count)
        var zeros = 0
        for byte in nal {
            if zeros >= 2 && byte == 3 {
                zeros = 0
                continue
            }
            rbsp.append(byte)
            zeros = byte == 0 ? zeros &+ 1 : 0
        }
        return rbsp
    }
}

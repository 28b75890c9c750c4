/// Lower-case, zero-padded two-digit hex without Foundation's `String(format:)`.
func hexByte(_ value: UInt8) -> String {
    let digits = String(value, radix: 16)
    return value < 16 ? "0" + digits : digits
}

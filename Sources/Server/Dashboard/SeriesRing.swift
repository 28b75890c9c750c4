/// The last `capacity` rows of a fixed set of columns (one row a second): storage for every row is allocated when the
/// ring is made, so memory does not grow while it fills, and an hour of a stream costs the same on its first second as
/// on its last. Values are 32-bit floats (rates, counts, shares: 7 significant digits are plenty for a chart); each
/// row's time is kept apart as a Double (Unix seconds).
struct SeriesRing: Sendable {
    let columns: Int
    let capacity: Int
    private var values: [Float]
    private var times: [Double]
    /// Index of the oldest row.
    private var start = 0
    private(set) var count = 0

    init(columns: Int, capacity: Int) {
        precondition(columns > 0 && capacity > 0)
        (self.columns, self.capacity) = (columns, capacity)
        values = [Float](repeating: .nan, count: columns * capacity)
        times = [Double](repeating: 0, count: capacity)
    }

    /// Bytes held by the rows, the same from the first row to the last.
    var storageBytes: Int {
        values.capacity * MemoryLayout<Float>.stride + times.capacity * MemoryLayout<Double>.stride
    }

    /// Adds a row, replacing the oldest once full. `row` has `columns` values (missing ones are NaN, shown as gaps).
    mutating func append(time: Double, _ row: [Float]) {
        precondition(row.count == columns)
        let slot: Int
        if count < capacity {
            slot = (start + count) % capacity
            count += 1
        } else {
            slot = start
            start = (start + 1) % capacity
        }
        times[slot] = time
        values.withUnsafeMutableBufferPointer { buffer in
            for (i, v) in row.enumerated() { buffer[slot * columns + i] = v }
        }
    }

    /// The newest `limit` rows (all when nil), oldest first.
    func rows(last limit: Int? = nil) -> [(time: Double, values: ArraySlice<Float>)] {
        let n = min(count, limit ?? count)
        return (count - n..<count).map { k in
            let slot = (start + k) % capacity
            return (times[slot], values[slot * columns..<(slot + 1) * columns])
        }
    }

    var last: (time: Double, values: ArraySlice<Float>)? { rows(last: 1).first }
}

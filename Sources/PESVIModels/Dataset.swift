import PESVINumerics

/// A dense data matrix for the engine: `rows` points of `cols` values, row-major, float32.
public final class Dataset: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let values: FloatBuffer

    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(rows >= 0 && cols > 0 && values.count == rows * cols,
                     "Dataset: \(values.count) values do not make \(rows) rows of \(cols)")
        self.rows = rows
        self.cols = cols
        self.values = FloatBuffer(values)
    }

    /// The listed rows, in order, as a new dataset.
    public func subset(_ indices: [Int]) -> Dataset {
        var v = [Float](); v.reserveCapacity(indices.count * cols)
        for i in indices { v.append(contentsOf: UnsafeBufferPointer(start: values.pointer + i * cols, count: cols)) }
        return Dataset(rows: indices.count, cols: cols, values: v)
    }

    public func row(_ i: Int) -> UnsafeMutablePointer<Float> { values.pointer + i * cols }

    /// Copies rows `indices[0..<count]` into `destination` (count × cols, row-major, in the
    /// listed order). Shuffled rows sit at addresses the hardware prefetcher cannot predict,
    /// so the lines of the row `prefetchDistance` ahead are requested while one is copied.
    @inline(__always)
    public func gather(_ indices: UnsafePointer<Int>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        let bytes = cols * MemoryLayout<Float>.stride
        for k in 0..<count {
            if k + Self.prefetchDistance < count { Prefetch.read(row(indices[k + Self.prefetchDistance]), bytes: bytes) }
            (destination + k * cols).update(from: row(indices[k]), count: cols)
        }
    }

    /// Rows ahead whose lines ``gather(_:count:into:)`` requests.
    public static let prefetchDistance = 4
}

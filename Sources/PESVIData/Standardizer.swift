/// Per-column standardization z = (x − mean) / std, fitted on training rows only.
///
/// `std` is the population standard deviation (divide by the number of rows) of the fitted
/// rows, computed in Double. A column that is constant on the fitted rows (max = min) gets
/// std 1, so it maps to 0 instead of dividing by zero. Codable as
/// `{"means":[…],"stds":[…]}` for a model's config.json; decoding checks that the two lists
/// have the same length and every std is positive and finite.
public struct Standardizer: Equatable, Sendable, Codable {
    public let means: [Float]
    public let stds: [Float]

    /// Throws `DataError.invalidArgument` if the counts differ or a std is not positive and
    /// finite, or a mean is not finite.
    public init(means: [Float], stds: [Float]) throws {
        guard means.count == stds.count else {
            throw DataError.invalidArgument("Standardizer: \(means.count) means but \(stds.count) stds")
        }
        if let j = stds.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
            throw DataError.invalidArgument("Standardizer: std \(stds[j]) of column \(j) is not positive and finite")
        }
        if let j = means.firstIndex(where: { !$0.isFinite }) {
            throw DataError.invalidArgument("Standardizer: mean \(means[j]) of column \(j) is not finite")
        }
        self.means = means; self.stds = stds
    }

    /// Fits on `rows` of `matrix` (all rows when nil). Throws `DataError.invalidArgument` when
    /// there are no rows or an index is out of range.
    public static func fit(_ matrix: DataMatrix, rows: [Int]? = nil) throws -> Standardizer {
        let indices = rows ?? Array(0..<matrix.rows)
        guard !indices.isEmpty else { throw DataError.invalidArgument("Standardizer.fit: no rows to fit on") }
        if let bad = indices.first(where: { $0 < 0 || $0 >= matrix.rows }) {
            throw DataError.invalidArgument("Standardizer.fit: row index \(bad) is out of range 0..<\(matrix.rows)")
        }
        let c = matrix.cols
        var sum = [Double](repeating: 0, count: c)
        var lo = [Float](repeating: .infinity, count: c), hi = [Float](repeating: -.infinity, count: c)
        matrix.values.withUnsafeBufferPointer { v in
            for r in indices {
                for j in 0..<c {
                    let x = v[r * c + j]
                    sum[j] += Double(x); lo[j] = min(lo[j], x); hi[j] = max(hi[j], x)
                }
            }
        }
        let mean = sum.map { $0 / Double(indices.count) }
        var ss = [Double](repeating: 0, count: c)
        matrix.values.withUnsafeBufferPointer { v in
            for r in indices { for j in 0..<c { let d = Double(v[r * c + j]) - mean[j]; ss[j] += d * d } }
        }
        let stds = (0..<c).map { j -> Float in
            lo[j] == hi[j] ? 1 : Float((ss[j] / Double(indices.count)).squareRoot())
        }
        // A std that underflows Float (spread below 1e-45) is treated as constant too.
        return try Standardizer(means: mean.map { Float($0) }, stds: stds.map { $0 > 0 ? $0 : 1 })
    }

    /// (x − mean) / std per column. Throws `DataError.invalidArgument` if the column count differs.
    public func transform(_ matrix: DataMatrix) throws -> DataMatrix {
        try map(matrix) { x, j in (x - means[j]) / stds[j] }
    }

    /// x · std + mean per column: the inverse of `transform` (up to Float rounding).
    public func inverseTransform(_ matrix: DataMatrix) throws -> DataMatrix {
        try map(matrix) { z, j in z * stds[j] + means[j] }
    }

    private func map(_ matrix: DataMatrix, _ f: (Float, Int) -> Float) throws -> DataMatrix {
        guard matrix.cols == means.count else {
            throw DataError.invalidArgument("Standardizer: fitted on \(means.count) columns, given \(matrix.cols)")
        }
        var out = matrix
        let c = matrix.cols
        out.values.withUnsafeMutableBufferPointer { v in
            for i in 0..<v.count { v[i] = f(v[i], i % c) }
        }
        return out
    }

    private enum CodingKeys: String, CodingKey { case means, stds }

    public init(from decoder: Decoder) throws {
        let box = try decoder.container(keyedBy: CodingKeys.self)
        let means = try box.decode([Float].self, forKey: .means), stds = try box.decode([Float].self, forKey: .stds)
        do { try self.init(means: means, stds: stds) } catch let e as DataError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }
}

import PESVINumerics

/// A seeded random partition of the row indices 0..<rows into training, validation and test sets.
///
/// The three index lists are disjoint, together cover every row, and are each sorted
/// ascending (membership is random, order is not). Sizes: test = round(rows · testFraction),
/// validation = round(rows · validationFraction), training = the rest. The permutation is
/// `RandomGenerator(seed:).permutation(rows)`: the first rows go to test, the next to
/// validation; so the same (rows, fractions, seed) gives the same split on every machine.
public struct DatasetSplit: Equatable, Sendable, Codable {
    public let train: [Int]
    public let validation: [Int]
    public let test: [Int]

    /// Throws `DataError.invalidArgument` when rows < 1, a fraction is negative or not finite,
    /// the fractions sum to 1 or more, or rounding leaves no training row.
    public init(rows: Int, validationFraction: Double = 0.1, testFraction: Double = 0.1, seed: UInt64) throws {
        guard rows >= 1 else { throw DataError.invalidArgument("DatasetSplit: rows must be ≥ 1, got \(rows)") }
        guard validationFraction >= 0, testFraction >= 0, validationFraction.isFinite, testFraction.isFinite,
              validationFraction + testFraction < 1 else {
            throw DataError.invalidArgument("DatasetSplit: fractions must be ≥ 0 with a sum below 1, got validation \(validationFraction), test \(testFraction)")
        }
        let nTest = Int((Double(rows) * testFraction).rounded())
        let nValidation = Int((Double(rows) * validationFraction).rounded())
        guard nTest + nValidation < rows else {
            throw DataError.invalidArgument("DatasetSplit: \(nValidation) validation and \(nTest) test rows leave no training rows out of \(rows)")
        }
        var g = RandomGenerator(seed: seed)
        let p = g.permutation(rows)
        test = p[0..<nTest].sorted()
        validation = p[nTest..<(nTest + nValidation)].sorted()
        train = p[(nTest + nValidation)...].sorted()
    }

    /// The three row subsets of `matrix` (column names kept). Throws `DataError.invalidArgument`
    /// if the split was made for more rows than `matrix` has.
    public func apply(to matrix: DataMatrix) throws -> (train: DataMatrix, validation: DataMatrix, test: DataMatrix) {
        (try matrix.selectingRows(train), try matrix.selectingRows(validation), try matrix.selectingRows(test))
    }
}

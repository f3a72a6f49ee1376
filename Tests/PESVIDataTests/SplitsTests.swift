import Foundation
import Testing
@testable import PESVIData

@Suite struct SplitsTests {
    @Test func defaultSplitIsDisjointCoveringAndSized() throws {
        let s = try DatasetSplit(rows: 1_797, seed: 1)
        #expect(s.test.count == 180 && s.validation.count == 180 && s.train.count == 1_437)
        let all = s.train + s.validation + s.test
        #expect(all.sorted() == Array(0..<1_797))
        #expect(s.train == s.train.sorted() && s.test == s.test.sorted())
        // Random membership: the test rows are not a block.
        #expect(s.test != Array(s.test[0]..<(s.test[0] + 180)))
    }

    @Test func seedReproducesTheSplit() throws {
        #expect(try DatasetSplit(rows: 500, validationFraction: 0.2, testFraction: 0.3, seed: 7)
                == DatasetSplit(rows: 500, validationFraction: 0.2, testFraction: 0.3, seed: 7))
        #expect(try DatasetSplit(rows: 500, seed: 7) != DatasetSplit(rows: 500, seed: 8))
        let s = try DatasetSplit(rows: 500, validationFraction: 0.2, testFraction: 0.3, seed: 7)
        #expect(s.validation.count == 100 && s.test.count == 150)
        let json = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(DatasetSplit.self, from: json) == s)
    }

    @Test func applySelectsTheRows() throws {
        let m = try DataMatrix(rows: 10, cols: 2, values: (0..<20).map(Float.init), columnNames: ["a", "b"])
        let s = try DatasetSplit(rows: 10, validationFraction: 0.2, testFraction: 0.2, seed: 3)
        let (train, validation, test) = try s.apply(to: m)
        #expect(train.rows == 6 && validation.rows == 2 && test.rows == 2)
        #expect(test.columnNames == ["a", "b"])
        #expect(test.values == s.test.flatMap { [Float(2 * $0), Float(2 * $0 + 1)] })
        let small = try DataMatrix(rows: 5, cols: 2, values: [Float](repeating: 0, count: 10))
        #expect(throws: DataError.self) { _ = try s.apply(to: small) }
    }

    @Test func badFractionsAreRefused() {
        #expect(throws: DataError.self) { _ = try DatasetSplit(rows: 10, validationFraction: 0.5, testFraction: 0.5, seed: 0) }
        #expect(throws: DataError.self) { _ = try DatasetSplit(rows: 10, validationFraction: -0.1, seed: 0) }
        #expect(throws: DataError.self) { _ = try DatasetSplit(rows: 0, seed: 0) }
        #expect(throws: DataError.self) { _ = try DatasetSplit(rows: 2, validationFraction: 0.45, testFraction: 0.45, seed: 0) }
    }
}

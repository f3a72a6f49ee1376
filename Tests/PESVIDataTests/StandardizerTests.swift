import Foundation
import Testing
@testable import PESVIData

@Suite struct StandardizerTests {
    @Test func fitsOnTrainingRowsOnly() throws {
        // Rows 0 and 1 are training; row 2 is an outlier that must not move the statistics.
        let m = try DataMatrix(rows: 3, cols: 2, values: [1, 10, 3, 10, 1000, -5])
        let s = try Standardizer.fit(m, rows: [0, 1])
        #expect(s.means == [2, 10])
        #expect(s.stds == [1, 1])          // column 0: population std 1; column 1: constant → 1
        let z = try s.transform(m)
        #expect(z.values == [-1, 0, 1, 0, 998, -15])
    }

    @Test func transformStandardizesAndInverseRestores() throws {
        let m = try SyntheticDataGenerator(n: 2_000, dim: 12, seed: 2).generate()
        let s = try Standardizer.fit(m)
        let z = try s.transform(m)
        for j in 0..<12 {
            let col = (0..<z.rows).map { Double(z[$0, j]) }
            let mean = col.reduce(0, +) / Double(col.count)
            let sd = (col.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(col.count)).squareRoot()
            #expect(abs(mean) < 1e-4 && abs(sd - 1) < 1e-4, "column \(j): mean \(mean), std \(sd)")
        }
        let back = try s.inverseTransform(z)
        #expect(back.columnNames == m.columnNames)
        let worst = zip(back.values, m.values).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        #expect(worst < 1e-5)
        let other = try DataMatrix(rows: 1, cols: 3, values: [1, 2, 3])
        #expect(throws: DataError.self) { _ = try s.transform(other) }
    }

    @Test func codableRoundTripAndValidation() throws {
        let s = try Standardizer(means: [0.1, -3.25, 1e-7], stds: [1, 0.3, 123.456])
        let json = try JSONEncoder().encode(s)
        let back = try JSONDecoder().decode(Standardizer.self, from: json)
        #expect(bits(back.means) == bits(s.means) && bits(back.stds) == bits(s.stds))
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode(Standardizer.self, from: Data(#"{"means":[1,2],"stds":[1,0]}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode(Standardizer.self, from: Data(#"{"means":[1,2],"stds":[1]}"#.utf8))
        }
        #expect(throws: DataError.self) { _ = try Standardizer.fit(try DataMatrix(rows: 1, cols: 1, values: [1]), rows: []) }
    }
}

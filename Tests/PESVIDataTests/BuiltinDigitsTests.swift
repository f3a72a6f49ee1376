import Foundation
import Testing
@testable import PESVIData

@Suite struct BuiltinDigitsTests {
    /// Data/digits.csv in this repository, found from this file's path.
    static let csvURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Data/digits.csv")

    @Test func embeddedValuesEqualTheCSVFile() throws {
        let embedded = BuiltinDatasets.digits()
        let file = try CSV.read(Self.csvURL)
        #expect(embedded.rows == 1_797 && embedded.cols == 64)
        #expect(embedded.columnNames == (0..<64).map { "p\($0)" })
        #expect(embedded == file)
    }

    @Test func valuesAreGreyLevels() {
        let d = BuiltinDatasets.digits()
        #expect(d.values.allSatisfy { $0 >= 0 && $0 <= 16 && $0 == $0.rounded() })
        #expect(d.values.min() == 0 && d.values.max() == 16)
        // The first image (a zero) starts 0, 0, 5, 13, 9, 1, 0, 0.
        #expect(Array(d.row(0).prefix(8)) == [0, 0, 5, 13, 9, 1, 0, 0])
    }
}

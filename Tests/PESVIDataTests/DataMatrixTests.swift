import Foundation
import Testing
@testable import PESVIData

@Suite struct DataMatrixTests {
    @Test func checkedInitializerRefusesInconsistentShapes() throws {
        let m = try DataMatrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5, 6], columnNames: ["a", "b", "c"])
        #expect(m[1, 2] == 6 && Array(m.row(1)) == [4, 5, 6])
        #expect(dataError { _ = try DataMatrix(rows: 2, cols: 3, values: [1]) }?.description == "DataMatrix: 2×3 needs 6 values, got 1")
        #expect(dataError { _ = try DataMatrix(rows: 1, cols: 2, values: [1, 2], columnNames: ["a"]) } != nil)
        #expect(dataError { _ = try DataMatrix(rows: -1, cols: 0, values: []) } != nil)
    }

    @Test func selectingRowsAndFindingNonFiniteValues() throws {
        var m = try DataMatrix(rows: 3, cols: 2, values: [0, 1, 2, 3, 4, 5])
        #expect(try m.selectingRows([2, 0, 2]).values == [4, 5, 0, 1, 4, 5])
        #expect(dataError { _ = try m.selectingRows([3]) }?.description.contains("row index 3") == true)
        #expect(m.firstNonFinite() == nil)
        m[2, 1] = -.infinity
        #expect(m.firstNonFinite()! == (5, 2, 1))
    }

    @Test func errorMessagesStayOnOneLine() {
        let e = DataError.nonNumericCell(path: "f.csv", line: 2, column: 3, text: "a\nb" + String(repeating: "x", count: 100))
        #expect(!e.description.contains("\n"))
        #expect(e.description.hasPrefix("f.csv line 2, column 3: \"a\\u{a}bxx"))
        #expect(e.description.hasSuffix("…\" is not a number"))
    }
}

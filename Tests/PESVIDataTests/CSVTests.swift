import Foundation
import Testing
import PESVINumerics
@testable import PESVIData

@Suite struct CSVTests {
    @Test func roundTripIsBitIdentical() throws {
        // Random finite bit patterns cover subnormals, huge values and 9-digit mantissas (the
        // slow path) as well as short decimals (the fast path).
        var g = RandomGenerator(seed: 3)
        var values: [Float] = [0, -0.0, 1, -1, 0.1, 16_777_216, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                               -.leastNormalMagnitude, Float(bitPattern: 0x0001_16C2) /* a subnormal near 1e-40 */, 123_456.79, 7e22, 3e-23]
        while values.count < 40 * 25 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if f.isFinite { values.append(f) }
        }
        let m = try DataMatrix(rows: 40, cols: 25, values: values, columnNames: (0..<25).map { "c\($0)" })
        let url = temporaryURL("csv")
        defer { try? FileManager.default.removeItem(at: url) }
        try CSV.write(m, to: url)
        let back = try CSV.read(url)
        #expect(back.rows == 40 && back.cols == 25)
        #expect(back.columnNames == m.columnNames)
        #expect(bits(back.values) == bits(values))

        try CSV.write(m, to: url, header: false)
        let noHeader = try CSV.read(url)
        #expect(noHeader.columnNames == nil)
        #expect(bits(noHeader.values) == bits(values))
    }

    /// The scanner must agree with the standard library's correctly rounded conversion,
    /// including halfway cases where rounding to Double first would go wrong.
    @Test func scannerMatchesCorrectlyRoundedConversion() {
        let cases = ["0.1", "1e-45", "7e-46", "3.4028235e38", "3.4028234e38", "16777217", "16777219",
                     "1.000000059604644775390625", "1.000000059604644775390625001", "1.0000000596046447",
                     "-2.5e-3", ".5", "5.", "+7", "0.000000000000000000000000000000000000011754944",
                     "123456789012345678901234567890", "9007199254740993", "4.0000002384185791015625",
                     "1.00000017881393432617187499", "0.30000001192092895507812500000001", "1e22", "1e-22"]
        for c in cases {
            let a = Array(c.utf8)
            let expected = Float(c)!
            #expect(CSV.scanNumber(a, 0, a.count) == .number(expected), "\(c): expected \(expected)")
            if case .number(let f) = CSV.scanNumber(a, 0, a.count) { #expect(f.bitPattern == expected.bitPattern, "\(c)") }
        }
        var g = RandomGenerator(seed: 12)
        for _ in 0..<20_000 {
            // Random decimals with 1–12 digits and exponents across the Float range.
            let digits = String(g.next() % 1_000_000_000_000)
            let text = "\(digits)e\(Int(g.next() % 80) - 45)"
            let a = Array(text.utf8)
            let expected = Float(text)!
            if expected.isFinite {
                guard case .number(let f) = CSV.scanNumber(a, 0, a.count), f.bitPattern == expected.bitPattern else {
                    Issue.record("\(text): scanner disagrees with Float(String) = \(expected)"); return
                }
            }
        }
    }

    @Test func headerAutoDetectionAndExplicitChoice() throws {
        let withHeader = try CSV.parse(Data("a,b,c\n1,2,3\n4,5,6\n".utf8), name: "t.csv")
        #expect(withHeader.columnNames == ["a", "b", "c"])
        #expect(withHeader.rows == 2 && withHeader.values == [1, 2, 3, 4, 5, 6])

        let noHeader = try CSV.parse(Data("1,2,3\n4,5,6".utf8), name: "t.csv")
        #expect(noHeader.columnNames == nil && noHeader.rows == 2)

        // Names that look like numbers: auto reads them as data, .present as a header.
        let numericNames = try CSV.parse(Data("1,2\n3,4\n".utf8), name: "t.csv", header: .present)
        #expect(numericNames.columnNames == ["1", "2"] && numericNames.values == [3, 4])
        // A quoted cell is text, so quoted numeric names are detected.
        let quoted = try CSV.parse(Data("\"1\",\"2\"\n3,4\n".utf8), name: "t.csv")
        #expect(quoted.columnNames == ["1", "2"] && quoted.values == [3, 4])
        // .absent turns a header into a non-numeric cell error.
        let e = dataError { _ = try CSV.parse(Data("x,y\n1,2\n".utf8), name: "t.csv", header: .absent) }
        #expect(e == .nonNumericCell(path: "t.csv", line: 1, column: 1, text: "x"))
    }

    @Test func numericColumnNamesRoundTripThroughAutoDetection() throws {
        let m = try DataMatrix(rows: 1, cols: 3, values: [1, 2, 3], columnNames: ["10", "1e5", "name"])
        let back = try CSV.parse(Data(CSV.encode(m)), name: "t.csv")
        #expect(back == m)
    }

    @Test func whitespaceBlankLinesCRLFAndBOM() throws {
        let text = "\u{FEFF}x  y\tz\r\n\r\n  1 2\t3  \r\n\n4   5 6\n\n"
        let m = try CSV.parse(Data(text.utf8), name: "w.txt")
        #expect(m.columnNames == ["x", "y", "z"])
        #expect(m.rows == 2 && m.values == [1, 2, 3, 4, 5, 6])
        let commaSpaces = try CSV.parse(Data(" 1 , 2 \n3,4".utf8), name: "c.csv")
        #expect(commaSpaces.values == [1, 2, 3, 4] && commaSpaces.cols == 2)
        let forcedWhitespace = try CSV.parse(Data("1 2\n3 4\n".utf8), name: "c.csv", separator: .whitespace)
        #expect(forcedWhitespace.values == [1, 2, 3, 4])
    }

    @Test func missingAndEmptyFiles() throws {
        let missing = temporaryURL("csv")
        #expect(dataError { _ = try CSV.read(missing) } == .fileNotFound(path: missing.path))

        for text in ["", "\n\n  \n", "a,b,c\n\n"] {
            let url = try temporaryFile(text)
            defer { try? FileManager.default.removeItem(at: url) }
            let e = dataError { _ = try CSV.read(url) }
            guard case .empty(let p, _) = e else { Issue.record("\(text.debugDescription): got \(String(describing: e))"); continue }
            #expect(p == url.path)
            #expect(e!.description.contains("no data rows"))
        }
    }

    @Test func nonNumericCellNamesLineColumnAndText() throws {
        let url = try temporaryFile("a,b,c\n1,2,3\n\n4,five,6\n")
        defer { try? FileManager.default.removeItem(at: url) }
        let e = dataError { _ = try CSV.read(url) }
        #expect(e == .nonNumericCell(path: url.path, line: 4, column: 2, text: "five"))
        let message = e?.description ?? ""
        #expect(message.contains(url.path) && message.contains("line 4") && message.contains("column 2") && message.contains("\"five\""))

        for (text, column, cell) in [("1,2\n3,\n", 2, ""), ("1,2\n3,4x\n", 2, "4x"), ("1,2\n1e,2\n", 1, "1e"),
                                     ("1,2\n3,-\n", 2, "-"), ("1,2\n3,0x10\n", 2, "0x10"), ("1,2\n3,1.2.3\n", 2, "1.2.3")] {
            let err = dataError { _ = try CSV.parse(Data(text.utf8), name: "t.csv") }
            #expect(err == .nonNumericCell(path: "t.csv", line: 2, column: column, text: cell), "\(text.debugDescription)")
        }
        #expect(dataError { _ = try CSV.parse(Data("1,2\n3,\n".utf8), name: "t.csv") }?.description.contains("empty cell") == true)
    }

    @Test func raggedRowsNameLineAndCounts() throws {
        let more = dataError { _ = try CSV.parse(Data("1,2,3\n4,5,6\n7,8,9,10,11\n".utf8), name: "r.csv") }
        #expect(more == .raggedRow(path: "r.csv", line: 3, expected: 3, found: 5))
        #expect(more?.description == "r.csv line 3: expected 3 cells (as in the first row), found 5")
        let fewer = dataError { _ = try CSV.parse(Data("x y z\n1 2 3\n4 5\n".utf8), name: "r.txt") }
        #expect(fewer == .raggedRow(path: "r.txt", line: 3, expected: 3, found: 2))
    }

    @Test(arguments: ["nan", "NaN", "-nan", "inf", "-Inf", "+infinity", "INFINITY", "1e39", "-3.5e38"])
    func nonFiniteValuesAreRefused(_ cell: String) {
        let e = dataError { _ = try CSV.parse(Data("a,b\n1,2\n3,\(cell)\n".utf8), name: "n.csv") }
        #expect(e == .nonFinite(path: "n.csv", location: "line 3, column 2", text: cell))
        #expect(e?.description.contains(cell) == true && e?.description.contains("line 3, column 2") == true)
    }

    @Test func writerRefusesNonFiniteAndBadNames() throws {
        let nan = try DataMatrix(rows: 2, cols: 2, values: [1, 2, .nan, 4])
        let e = dataError { _ = try CSV.encode(nan) }
        #expect(e?.description.contains("row 1, column 0") == true)
        let badName = try DataMatrix(rows: 1, cols: 1, values: [1], columnNames: ["a,b"])
        #expect(dataError { _ = try CSV.encode(badName) } != nil)
    }

    @Test func writeReplacesAtomicallyAndLeavesNoTemporaryFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("out.csv")
        try CSV.write(try DataMatrix(rows: 1, cols: 2, values: [1, 2]), to: url)
        try CSV.write(try DataMatrix(rows: 1, cols: 3, values: [3, 4, 5]), to: url)
        #expect(try CSV.read(url).values == [3, 4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.csv"])
        // A directory that does not exist: a clear write error, nothing left behind.
        let bad = dir.appendingPathComponent("missing/out.csv")
        let e = dataError { try CSV.write(try DataMatrix(rows: 1, cols: 1, values: [1]), to: bad) }
        #expect(e?.description.hasPrefix(bad.path) == true)
    }
}

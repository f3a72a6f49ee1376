import Foundation

/// Numeric CSV files: one data point per line, one feature per cell.
///
/// Reading:
/// - Cells are separated by commas, or by runs of spaces and tabs (`Separator.auto` picks
///   comma if the first non-blank line contains one). Spaces and tabs around a cell are
///   ignored, and one pair of double quotes around a cell is removed (quoted cells may not
///   contain the separator).
/// - Blank lines, `\r\n` line ends, a missing or extra trailing newline and a UTF-8 byte-order
///   mark are tolerated. Line numbers in errors count every physical line from 1.
/// - Header (`Header.auto`): the first non-blank line is a header if any of its cells is not a
///   number, or is quoted. Use `.present` / `.absent` to decide explicitly (for example when
///   every column name looks like a number).
/// - Numbers are decimal: `[+-]digits[.digits][(e|E)[+-]digits]` (`.5` and `5.` allowed),
///   converted to the nearest `Float` (correctly rounded, ties to even).
/// - Errors (`DataError`): `.fileNotFound`; `.empty` when there are no data rows; `.nonNumericCell`
///   (line, column, text); `.raggedRow` (line, expected and found counts); `.nonFinite` for
///   `nan`, `inf`, `infinity` (any case, any sign) and for numbers beyond the `Float` range.
///
/// Writing: `description` of each `Float` (the shortest text that reads back to the same
/// bits), comma-separated, `\n` line ends, optional header, written atomically. NaN and
/// infinity are refused, so everything written can be read back bit-identically.
public enum CSV {
    /// Whether the first non-blank line holds column names.
    public enum Header: Sendable { case auto, present, absent }
    /// How cells are separated.
    public enum Separator: Sendable { case auto, comma, whitespace }

    /// Reads a numeric CSV file into a `rows × cols` matrix; `columnNames` is set when there is a
    /// header. Throws `DataError` as described on `CSV`.
    public static func read(_ url: URL, header: Header = .auto, separator: Separator = .auto) throws -> DataMatrix {
        let data = try readFile(url)
        return try parse(data, name: url.path, header: header, separator: separator)
    }

    /// Parses CSV bytes already in memory; `name` is used in error messages.
    public static func parse(_ data: Data, name: String, header: Header = .auto, separator: Separator = .auto) throws -> DataMatrix {
        try data.withUnsafeBytes { raw in
            try Parser(bytes: raw.bindMemory(to: UInt8.self), name: name).run(header: header, separator: separator)
        }
    }

    /// Writes `matrix` as CSV to `url`, atomically. With `header` true and `columnNames` set, the
    /// first line holds the names (quoted when a name would read as a number). Throws
    /// `DataError.invalidArgument` for a non-finite value (naming row and column) or a column
    /// name containing a comma, a double quote or a line break, and `.writeFailed` on I/O errors.
    public static func write(_ matrix: DataMatrix, to url: URL, header: Bool = true) throws {
        try AtomicFile.write(encode(matrix, header: header), to: url)
    }

    /// The bytes `write` would store.
    public static func encode(_ matrix: DataMatrix, header: Bool = true) throws -> [UInt8] {
        guard matrix.values.count == matrix.rows * matrix.cols else {
            throw DataError.invalidArgument("CSV.write: \(matrix.rows)×\(matrix.cols) matrix has \(matrix.values.count) values")
        }
        if let bad = matrix.firstNonFinite() {
            throw DataError.invalidArgument("CSV.write: value \(matrix.values[bad.index]) at row \(bad.row), column \(bad.col) is not finite")
        }
        var out = [UInt8]()
        out.reserveCapacity(matrix.values.count * 11 + 64)
        if header, let names = matrix.columnNames {
            guard names.count == matrix.cols else {
                throw DataError.invalidArgument("CSV.write: \(matrix.cols) columns but \(names.count) column names")
            }
            for (j, n) in names.enumerated() {
                if n.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                    throw DataError.invalidArgument("CSV.write: column name \"\(DataError.clip(n))\" contains a comma, quote or line break")
                }
                if j > 0 { out.append(UInt8(ascii: ",")) }
                // A name that would read as a number (or is empty) is quoted, so that header
                // detection still sees text.
                let utf8 = Array(n.utf8)
                let quote = utf8.isEmpty || scanNumber(utf8, 0, utf8.count) != .notNumber
                if quote { out.append(UInt8(ascii: "\"")) }
                out.append(contentsOf: n.utf8)
                if quote { out.append(UInt8(ascii: "\"")) }
            }
            out.append(UInt8(ascii: "\n"))
        }
        for r in 0..<matrix.rows {
            for c in 0..<matrix.cols {
                if c > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: matrix.values[r * matrix.cols + c].description.utf8)
            }
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    // MARK: - Parsing

    enum Scan: Equatable { case number(Float), nonFinite, notNumber }

    /// Powers of ten exactly representable as Double (10^0 ... 10^22).
    static let exactPowersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// Scans bytes[start..<end] as one decimal number (see `CSV`).
    ///
    /// Fast path (Clinger): with at most 19 significant digits forming m < 2^53 and a decimal
    /// exponent in −22...22, m·10^e (or m/10^−e) is one correctly rounded Double operation. The
    /// conversion to Float is then correct unless the Double lies exactly on a midpoint between
    /// two Floats (double rounding); that case, and every other one, falls back to the standard
    /// library's correctly rounded `Float(String)` on text this scanner has already validated.
    @inline(__always)
    static func scanNumber<B: RandomAccessCollection>(_ p: B, _ start: Int, _ end: Int) -> Scan where B.Element == UInt8, B.Index == Int {
        var i = start
        if i >= end { return .notNumber }
        var negative = false
        if p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") { negative = p[i] == UInt8(ascii: "-"); i += 1 }
        var mantissa: UInt64 = 0
        var digits = 0, exp10 = 0
        var sawDigit = false, inexact = false
        while i < end, p[i] &- 48 < 10 {
            let d = UInt64(p[i] &- 48)
            sawDigit = true
            if digits < 19 { if mantissa != 0 || d != 0 { mantissa = mantissa &* 10 &+ d; digits += 1 } }
            else { exp10 += 1; if d != 0 { inexact = true } }
            i += 1
        }
        if i < end, p[i] == UInt8(ascii: ".") {
            i += 1
            while i < end, p[i] &- 48 < 10 {
                let d = UInt64(p[i] &- 48)
                sawDigit = true
                if digits < 19 {
                    if mantissa != 0 || d != 0 { mantissa = mantissa &* 10 &+ d; digits += 1 }
                    exp10 -= 1
                } else if d != 0 { inexact = true }
                i += 1
            }
        }
        if !sawDigit { return isNonFiniteWord(p, i, end) ? .nonFinite : .notNumber }
        if i < end, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var expNegative = false
            if i < end, p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") { expNegative = p[i] == UInt8(ascii: "-"); i += 1 }
            var e = 0, expDigits = 0
            while i < end, p[i] &- 48 < 10 {
                if e < 100_000 { e = e * 10 + Int(p[i] &- 48) }
                expDigits += 1; i += 1
            }
            if expDigits == 0 { return .notNumber }
            exp10 += expNegative ? -e : e
        }
        if i != end { return .notNumber }
        if mantissa == 0 { return .number(negative ? -0.0 : 0.0) }
        if !inexact, mantissa < (1 << 53), exp10 >= -22, exp10 <= 22 {
            var d = Double(mantissa)
            d = exp10 >= 0 ? d * exactPowersOfTen[exp10] : d / exactPowersOfTen[-exp10]
            // Double → Float drops 29 mantissa bits; exactly 1 followed by 28 zeros is a midpoint.
            if d.bitPattern & 0x1FFF_FFFF != 0x1000_0000 {
                let f = Float(d)
                return .number(negative ? -f : f)
            }
        }
        guard let f = Float(String(decoding: p[start..<end], as: UTF8.self)) else { return .notNumber }
        return f.isFinite ? .number(f) : .nonFinite
    }

    /// `nan`, `inf` or `infinity` in any case (the sign was consumed by the caller).
    static func isNonFiniteWord<B: RandomAccessCollection>(_ p: B, _ start: Int, _ end: Int) -> Bool where B.Element == UInt8, B.Index == Int {
        let word = String(decoding: p[start..<end], as: UTF8.self).lowercased()
        return word == "nan" || word == "inf" || word == "infinity"
    }

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let name: String

        static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), cr = UInt8(ascii: "\r")
        static let newline = UInt8(ascii: "\n"), comma = UInt8(ascii: ","), quote = UInt8(ascii: "\"")

        @inline(__always) static func isBlank(_ b: UInt8) -> Bool { b == space || b == tab || b == cr }

        /// The cells of one line as (start, end, quoted) ranges, for the header line only.
        func cells(_ start: Int, _ end: Int, comma useComma: Bool) -> [(Int, Int, Bool)] {
            var out: [(Int, Int, Bool)] = []
            var i = start
            while true {
                let (s, e, q, next) = nextCell(i, end, comma: useComma)
                if s < 0 { break }
                out.append((s, e, q))
                guard let n = next else { break }
                i = n
            }
            return out
        }

        /// The next cell from `i` within a line ending at `end`: trimmed bounds, whether it was
        /// quoted, and where the following cell starts (nil after the last cell). Returns s = −1
        /// when no cell remains (whitespace mode at end of line).
        @inline(__always)
        func nextCell(_ i0: Int, _ end: Int, comma useComma: Bool) -> (Int, Int, Bool, Int?) {
            let p = bytes
            var i = i0
            while i < end, Self.isBlank(p[i]) { i += 1 }
            var s = i, e: Int, next: Int?
            if useComma {
                while i < end, p[i] != Self.comma { i += 1 }
                e = i
                next = i < end ? i + 1 : nil
            } else {
                if i >= end { return (-1, -1, false, nil) }
                while i < end, !Self.isBlank(p[i]) { i += 1 }
                e = i
                while i < end, Self.isBlank(p[i]) { i += 1 }
                next = i < end ? i : nil
            }
            while e > s, Self.isBlank(p[e - 1]) { e -= 1 }
            var quoted = false
            if e - s >= 2, p[s] == Self.quote, p[e - 1] == Self.quote { s += 1; e -= 1; quoted = true }
            return (s, e, quoted, next)
        }

        func text(_ s: Int, _ e: Int) -> String { String(decoding: bytes[s..<e], as: UTF8.self) }

        func run(header: Header, separator: Separator) throws -> DataMatrix {
            let p = bytes, n = bytes.count
            var pos = 0
            if n >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { pos = 3 }
            var line = 0
            var cols = -1
            var useComma = separator == .comma
            var names: [String]? = nil
            var values: [Float] = []
            var rows = 0
            while pos < n {
                // One physical line: [pos, lineEnd).
                line += 1
                var lineEnd = pos
                while lineEnd < n, p[lineEnd] != Self.newline { lineEnd += 1 }
                let next = lineEnd + 1
                var blank = true
                for k in pos..<lineEnd where !Self.isBlank(p[k]) { blank = false; break }
                if blank { pos = next; continue }

                if cols < 0 {
                    // First non-blank line: separator, header, column count.
                    if separator == .auto { useComma = UnsafeBufferPointer(rebasing: p[pos..<lineEnd]).contains(Self.comma) }
                    let cs = cells(pos, lineEnd, comma: useComma)
                    cols = cs.count
                    let isHeader: Bool
                    switch header {
                    case .present: isHeader = true
                    case .absent: isHeader = false
                    case .auto: isHeader = cs.contains { $0.2 || CSV.scanNumber(p, $0.0, $0.1) == .notNumber }
                    }
                    if isHeader {
                        names = cs.map { text($0.0, $0.1) }
                        pos = next
                        continue
                    }
                    let estimate = cols * max(1, n / max(1, lineEnd - pos + 1))
                    values.reserveCapacity(min(estimate + cols, 1 << 31))
                }

                // A data line.
                var i = pos, column = 0
                while true {
                    let (s, e, _, after) = nextCell(i, lineEnd, comma: useComma)
                    if s < 0 { break }
                    column += 1
                    if column > cols {
                        // Count the rest for the message.
                        var extra = column
                        var j = after
                        while let k = j {
                            let (s2, _, _, a2) = nextCell(k, lineEnd, comma: useComma)
                            if s2 < 0 { break }
                            extra += 1; j = a2
                        }
                        throw DataError.raggedRow(path: name, line: line, expected: cols, found: extra)
                    }
                    switch CSV.scanNumber(p, s, e) {
                    case .number(let f): values.append(f)
                    case .nonFinite:
                        throw DataError.nonFinite(path: name, location: "line \(line), column \(column)", text: text(s, e))
                    case .notNumber:
                        throw DataError.nonNumericCell(path: name, line: line, column: column, text: text(s, e))
                    }
                    guard let a = after else { break }
                    i = a
                }
                if column != cols { throw DataError.raggedRow(path: name, line: line, expected: cols, found: column) }
                rows += 1
                pos = next
            }
            if rows == 0 {
                throw DataError.empty(path: name, detail: names == nil ? "no data rows" : "a header but no data rows")
            }
            return DataMatrix(uncheckedRows: rows, cols: cols, values: values, columnNames: names)
        }
    }
}

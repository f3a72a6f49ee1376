import Foundation

/// NumPy `.npy` files (format specification: numpy.lib.format, versions 1.0, 2.0 and 3.0).
///
/// Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length
/// (little-endian UInt16 in 1.0, UInt32 in 2.0 and 3.0), then the header: the text of a Python
/// dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (r, c), }`, padded with
/// spaces and ended by `\n` so that the data starts at a multiple of 64 bytes (16 in old files;
/// the reader accepts any padding). The data follows, C order, exactly `r·c·itemsize` bytes.
///
/// Reading accepts 1-D arrays (read as N×1) and 2-D arrays in C order with dtype `<f4`, `<f8`,
/// `<i1`/`|i1`, `<i2`, `<i4`, `<i8`, `<u1`/`|u1`, `<u2`, `<u4`, `<u8`; every value is converted to the
/// nearest `Float` (64-bit floats and large integers round). It refuses, with `DataError`:
/// big-endian data, `fortran_order: True`, any other dtype (complex, object, strings, booleans,
/// float16, structured; named in the message), 0-d or more than 2-d arrays, zero elements, a
/// bad magic or version, a truncated or unparsable header, a shape whose data is longer than
/// the file ("lying header") or shorter (trailing bytes), and NaN or infinity (or a `<f8` value
/// beyond the Float range), reported with the flat index and (row, column).
///
/// Writing: version 1.0, `<f4`, 2-D, C order, header padded to 64 bytes, atomically.
public enum NPY {
    /// Reads a `.npy` file into a `rows × cols` matrix (`columnNames` nil).
    public static func read(_ url: URL) throws -> DataMatrix {
        try decode(readFile(url), name: url.path)
    }

    /// Writes `matrix` as a version 1.0 `<f4` 2-D `.npy` file, atomically. Throws
    /// `DataError.invalidArgument` if the matrix is inconsistent or holds NaN or infinity.
    public static func write(_ matrix: DataMatrix, to url: URL) throws {
        try AtomicFile.write(encode(matrix), to: url)
    }

    /// The header bytes `write` produces for a `rows × cols` float32 array: magic, version 1.0,
    /// UInt16 header length, dict text padded with spaces and ended by `\n` to a multiple of 64.
    public static func headerBytes(rows: Int, cols: Int) -> [UInt8] {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        let prefix = 6 + 2 + 2
        let unpadded = prefix + dict.utf8.count + 1   // + the final "\n"
        let total = (unpadded + 63) / 64 * 64
        let text = dict + String(repeating: " ", count: total - unpadded) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = UInt16(text.utf8.count)
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(text.utf8)
        return out
    }

    /// The bytes `write` would store.
    public static func encode(_ matrix: DataMatrix) throws -> [UInt8] {
        guard matrix.rows >= 0, matrix.cols >= 0, matrix.values.count == matrix.rows * matrix.cols else {
            throw DataError.invalidArgument("NPY.write: \(matrix.rows)×\(matrix.cols) matrix has \(matrix.values.count) values")
        }
        if let bad = matrix.firstNonFinite() {
            throw DataError.invalidArgument("NPY.write: value \(matrix.values[bad.index]) at row \(bad.row), column \(bad.col) is not finite")
        }
        var out = headerBytes(rows: matrix.rows, cols: matrix.cols)
        out.reserveCapacity(out.count + 4 * matrix.values.count)
        appendLittleEndian(matrix.values, to: &out)
        return out
    }

    /// The element types this reader converts.
    enum ElementType: String {
        case f4, f8, i1, i2, i4, i8, u1, u2, u4, u8
        var size: Int {
            switch self {
            case .i1, .u1: return 1
            case .i2, .u2: return 2
            case .f4, .i4, .u4: return 4
            case .f8, .i8, .u8: return 8
            }
        }
    }

    /// Parses a whole `.npy` file in memory; `name` is used in messages.
    public static func decode(_ data: Data, name: String) throws -> DataMatrix {
        func bad(_ d: String) -> DataError { .malformed(path: name, detail: d) }
        let bytes = [UInt8](data)   // one copy; the file is read once
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else {
            throw bad("is not a .npy file: it does not start with the magic \\x93NUMPY")
        }
        let major = bytes[6], minor = bytes[7]
        guard [1, 2, 3].contains(major), minor == 0 else {
            throw DataError.unsupported(path: name, detail: ".npy format version \(major).\(minor) (this reader knows 1.0, 2.0, 3.0)")
        }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else { throw bad("is truncated: the header length field is incomplete") }
        var headerLength = 0
        for k in 0..<lengthBytes { headerLength |= Int(bytes[8 + k]) << (8 * k) }
        let headerStart = 8 + lengthBytes, dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw bad("is truncated: the header says it is \(headerLength) bytes long, the file has \(bytes.count - headerStart) after the length field")
        }
        guard let text = String(bytes: bytes[headerStart..<dataStart], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw bad("has a header that is not valid text")
        }
        let dict: [String: PythonLiteral]
        do {
            var parser = PythonLiteralParser(text)
            dict = try parser.parseHeaderDict()
        } catch let e as PythonLiteralParser.Failure {
            throw bad("has an unparsable header (\(e.message)): \(DataError.clip(text.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        guard case .string(let descr)? = dict["descr"] else {
            if case .list? = dict["descr"] { throw DataError.unsupported(path: name, detail: "structured dtype (a list of fields)") }
            throw bad("has a header without a string 'descr' entry")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw bad("has a header without a True/False 'fortran_order' entry") }
        guard case .tuple(let shape)? = dict["shape"] else { throw bad("has a header without a tuple 'shape' entry") }

        let type = try elementType(descr, name: name)
        if fortran { throw DataError.unsupported(path: name, detail: "fortran_order True (only C order is read)") }
        guard shape.count == 1 || shape.count == 2 else {
            throw DataError.unsupported(path: name, detail: "\(shape.count)-d array with shape \(shapeText(shape)) (only 1-d and 2-d arrays are read)")
        }
        let rows = shape[0], cols = shape.count == 2 ? shape[1] : 1
        let (count, o1) = rows.multipliedReportingOverflow(by: cols)
        let (byteCount, o2) = count.multipliedReportingOverflow(by: type.size)
        if o1 || o2 { throw bad("has a shape \(shapeText(shape)) too large to address") }
        if count == 0 { throw DataError.empty(path: name, detail: "shape \(shapeText(shape)) has no elements") }
        let available = bytes.count - dataStart
        if available < byteCount {
            throw bad("is truncated: shape \(shapeText(shape)) of '\(descr)' needs \(byteCount) bytes of data, the file has \(available)")
        }
        if available > byteCount {
            throw bad("has \(available - byteCount) bytes after the data for shape \(shapeText(shape)) of '\(descr)' (\(byteCount) bytes expected)")
        }

        var values = [Float](repeating: 0, count: count)
        var firstBad: (Int, String)? = nil
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress! + dataStart
            if type == .f4 {
                values = loadLittleEndianFloats(p, count: count)
                if let i = values.firstIndex(where: { !$0.isFinite }) { firstBad = (i, "\(values[i])") }
                return
            }
            values.withUnsafeMutableBufferPointer { out in
                func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T { T(littleEndian: p.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)) }
                switch type {
                case .f4: break   // handled above
                case .f8:
                    for i in 0..<count {
                        let d = Double(bitPattern: load(UInt64.self, i))
                        let f = Float(d)
                        if !f.isFinite, firstBad == nil { firstBad = (i, "\(d)") }
                        out[i] = f
                    }
                case .i1: for i in 0..<count { out[i] = Float(load(Int8.self, i)) }
                case .i2: for i in 0..<count { out[i] = Float(load(Int16.self, i)) }
                case .i4: for i in 0..<count { out[i] = Float(load(Int32.self, i)) }
                case .i8: for i in 0..<count { out[i] = Float(load(Int64.self, i)) }
                case .u1: for i in 0..<count { out[i] = Float(load(UInt8.self, i)) }
                case .u2: for i in 0..<count { out[i] = Float(load(UInt16.self, i)) }
                case .u4: for i in 0..<count { out[i] = Float(load(UInt32.self, i)) }
                case .u8: for i in 0..<count { out[i] = Float(load(UInt64.self, i)) }
                }
            }
        }
        if let (i, text) = firstBad {
            throw DataError.nonFinite(path: name, location: "flat index \(i) (row \(i / cols), column \(i % cols))", text: text)
        }
        return DataMatrix(uncheckedRows: rows, cols: cols, values: values)
    }

    static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Maps a `descr` string to an element type, refusing big-endian and unknown types by name.
    static func elementType(_ descr: String, name: String) throws -> ElementType {
        let names = ["f4": "float32", "f8": "float64", "f2": "float16", "f16": "float128", "c8": "complex64",
                     "c16": "complex128", "b1": "bool", "O": "object", "V": "void/raw bytes", "M8": "datetime64", "m8": "timedelta64"]
        guard let order = descr.first, "<>|=".contains(order) else {
            throw DataError.unsupported(path: name, detail: "dtype '\(descr)' (expected a byte-order character < | > =)")
        }
        let code = String(descr.dropFirst())
        func kind() -> String {
            if let n = names[code] { return n }
            if code.hasPrefix("U") { return "unicode string" }
            if code.hasPrefix("S") || code.hasPrefix("a") { return "byte string" }
            if code.hasPrefix("M8") || code.hasPrefix("m8") { return "datetime" }
            return "unknown"
        }
        guard let type = ElementType(rawValue: code) else {
            throw DataError.unsupported(path: name, detail: "dtype '\(descr)' (\(kind())); supported: <f4 <f8 <i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8")
        }
        if order == ">" && type.size > 1 {
            throw DataError.unsupported(path: name, detail: "big-endian dtype '\(descr)' (only little-endian is read)")
        }
        if order == "=" && type.size > 1 {
            // Native order: numpy writes '<' or '>' explicitly, so '=' only comes from hand-made files.
            #if _endian(big)
            throw DataError.unsupported(path: name, detail: "big-endian dtype '\(descr)' (native order on this machine)")
            #endif
        }
        if order == "|" && type.size > 1 {
            throw DataError.unsupported(path: name, detail: "dtype '\(descr)' without byte order for a \(type.size)-byte type")
        }
        return type
    }
}

/// The values that can appear in a `.npy` header dict.
enum PythonLiteral: Equatable {
    case string(String), bool(Bool), int(Int), tuple([Int]), list, none
}

/// A parser for the small subset of Python literal syntax used by `.npy` headers: a dict with
/// string keys whose values are strings, True/False/None, integers, tuples of integers (or a
/// list, recognized only so that structured dtypes can be refused by name).
struct PythonLiteralParser {
    struct Failure: Error { var message: String }
    let s: [Character]
    var i = 0
    init(_ text: String) { s = Array(text) }

    mutating func skipSpace() { while i < s.count, s[i].isWhitespace { i += 1 } }
    mutating func expect(_ c: Character) throws {
        skipSpace()
        guard i < s.count, s[i] == c else { throw Failure(message: "expected '\(c)' at character \(i)") }
        i += 1
    }
    mutating func peek() -> Character? { skipSpace(); return i < s.count ? s[i] : nil }

    mutating func parseHeaderDict() throws -> [String: PythonLiteral] {
        try expect("{")
        var out: [String: PythonLiteral] = [:]
        while true {
            if peek() == "}" { i += 1; break }
            let key = try parseString()
            try expect(":")
            out[key] = try parseValue()
            if peek() == "," { i += 1; continue }
            try expect("}")
            break
        }
        skipSpace()
        if i != s.count { throw Failure(message: "unexpected text after the dict at character \(i)") }
        return out
    }

    mutating func parseString() throws -> String {
        skipSpace()
        guard i < s.count, s[i] == "'" || s[i] == "\"" else { throw Failure(message: "expected a quoted string at character \(i)") }
        let q = s[i]; i += 1
        var out = ""
        while i < s.count, s[i] != q {
            if s[i] == "\\", i + 1 < s.count { i += 1 }
            out.append(s[i]); i += 1
        }
        guard i < s.count else { throw Failure(message: "unterminated string") }
        i += 1
        return out
    }

    mutating func parseInt() throws -> Int {
        skipSpace()
        let start = i
        while i < s.count, s[i].isASCII, s[i].isNumber { i += 1 }
        // Python 2 era files may write shapes as 3L.
        let digits = String(s[start..<i])
        if i < s.count, s[i] == "L" { i += 1 }
        guard let v = Int(digits) else { throw Failure(message: "expected a non-negative integer at character \(start)") }
        return v
    }

    mutating func parseValue() throws -> PythonLiteral {
        guard let c = peek() else { throw Failure(message: "unexpected end of header") }
        switch c {
        case "'", "\"": return .string(try parseString())
        case "(":
            i += 1
            var items: [Int] = []
            while true {
                if peek() == ")" { i += 1; break }
                items.append(try parseInt())
                if peek() == "," { i += 1; continue }
                try expect(")")
                break
            }
            return .tuple(items)
        case "[":
            // Skip a (structured dtype) list, respecting nesting and quotes.
            var depth = 0
            while i < s.count {
                let ch = s[i]
                if ch == "'" || ch == "\"" { _ = try parseString(); continue }
                if ch == "[" || ch == "(" { depth += 1 }
                if ch == "]" || ch == ")" { depth -= 1; if depth == 0 { i += 1; return .list } }
                i += 1
            }
            throw Failure(message: "unterminated list")
        default:
            for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)] {
                if i + word.count <= s.count, String(s[i..<(i + word.count)]) == word { i += word.count; return value }
            }
            if c.isNumber { return .int(try parseInt()) }
            throw Failure(message: "unexpected '\(c)' at character \(i)")
        }
    }
}

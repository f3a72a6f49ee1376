/// Everything that can go wrong reading, writing or preparing data.
///
/// `description` is always one line. Errors about a file start with the file's path as the
/// caller gave it and say what is wrong and where (line and column, flat index, tensor name),
/// so a user can fix the file from the message alone.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but cannot be read (permissions, a directory, an I/O error).
    case unreadable(path: String, reason: String)
    /// The file has no data (no data rows, no elements).
    case empty(path: String, detail: String)
    /// A CSV cell is not a decimal number. `line` and `column` are 1-based; `text` is the cell.
    case nonNumericCell(path: String, line: Int, column: Int, text: String)
    /// A CSV row has a different number of cells than the first row. `line` is 1-based.
    case raggedRow(path: String, line: Int, expected: Int, found: Int)
    /// A NaN or infinite value; `location` says where ("line 3, column 2", "row 4, column 0 (flat index 12)").
    case nonFinite(path: String, location: String, text: String)
    /// A well-formed file in a variant this module does not read (a dtype, byte order, layout).
    case unsupported(path: String, detail: String)
    /// The file breaks its format (bad magic, unparsable header, inconsistent sizes, truncation).
    case malformed(path: String, detail: String)
    /// Writing failed; `reason` is the system's message.
    case writeFailed(path: String, reason: String)
    /// A caller passed an inconsistent value (a shape mismatch, a fraction out of range).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such file"
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        case .empty(let p, let d): return "\(p) is empty: \(d)"
        case .nonNumericCell(let p, let l, let c, let t):
            return "\(p) line \(l), column \(c): \(t.isEmpty ? "empty cell" : "\"\(DataError.clip(t))\" is not a number")"
        case .raggedRow(let p, let l, let e, let f):
            return "\(p) line \(l): expected \(e) cells (as in the first row), found \(f)"
        case .nonFinite(let p, let loc, let t):
            return "\(p) \(loc): value \"\(DataError.clip(t))\" is not finite (NaN and infinity are refused)"
        case .unsupported(let p, let d): return "\(p): unsupported: \(d)"
        case .malformed(let p, let d): return "\(p) \(d)"
        case .writeFailed(let p, let r): return "\(p): cannot write: \(r)"
        case .invalidArgument(let m): return m
        }
    }

    /// Quoted user text kept to one short line: control characters escaped, at most 40 characters.
    static func clip(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            if ch.value < 0x20 || ch.value == 0x7F { out += "\\u{\(String(ch.value, radix: 16))}" } else { out.unicodeScalars.append(ch) }
        }
        return out.count > 40 ? String(out.prefix(40)) + "…" : out
    }
}

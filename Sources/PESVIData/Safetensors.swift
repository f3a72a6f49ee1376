import Foundation

/// A named float32 tensor: `shape` (row-major, any rank, `[]` for a scalar) and its
/// `shape.reduce(1, *)` values.
public struct FloatTensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    /// Throws `DataError.invalidArgument` when a dimension is negative or the value count does not
    /// match the shape.
    public init(shape: [Int], values: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw DataError.invalidArgument("FloatTensor: shape \(shape) does not hold \(values.count) values")
        }
        self.shape = shape; self.values = values
    }

    init(uncheckedShape shape: [Int], values: [Float]) { self.shape = shape; self.values = values }
}

/// The contents of a safetensors file: tensors by name and string metadata.
public struct SafetensorsFile: Equatable, Sendable {
    public var tensors: [String: FloatTensor]
    public var metadata: [String: String]
    public init(tensors: [String: FloatTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata
    }
}

/// The safetensors format (huggingface/safetensors), float32 tensors only.
///
/// Layout: an 8-byte little-endian UInt64 N, then N bytes of UTF-8 JSON header
/// `{"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[r,c],"data_offsets":[begin,end]},…}`
/// padded with spaces so that the data starts at a multiple of 8 bytes, then the data buffer.
/// Offsets are in bytes relative to the buffer start; the tensors tile the buffer exactly
/// (contiguous, non-overlapping, no gap, no trailing bytes); values are little-endian.
///
/// Writing is deterministic: `__metadata__` first (omitted when empty), then tensors sorted by
/// the UTF-8 bytes of their names, stored in that order; compact JSON; atomic.
///
/// Reading validates everything and throws `DataError` with a one-line message naming the
/// file and, where there is one, the tensor: header length beyond the file or above 100 MB,
/// header not JSON or not an object, an entry without a string dtype, an integer shape or two
/// integer data_offsets, a dtype other than F32 (`.unsupported`, naming it), a shape whose
/// size × 4 differs from the offsets' span, a file shorter than the data the header describes
/// (`is truncated`), overlapping tensors, gaps or trailing bytes, non-string metadata values,
/// and NaN or infinity in a tensor (named with its flat index). Writing refuses the same.
public enum Safetensors {
    /// The largest header accepted, as in the reference implementation.
    public static let maximumHeaderLength = 100_000_000

    public static func read(_ url: URL) throws -> SafetensorsFile {
        try decode(readFile(url), name: url.path)
    }

    public static func write(_ file: SafetensorsFile, to url: URL) throws {
        try AtomicFile.write(encode(file), to: url)
    }

    public static func write(tensors: [String: FloatTensor], metadata: [String: String] = [:], to url: URL) throws {
        try write(SafetensorsFile(tensors: tensors, metadata: metadata), to: url)
    }

    /// The bytes `write` would store. Throws `DataError.invalidArgument` for an empty name, the
    /// reserved name `__metadata__`, an inconsistent tensor or a non-finite value.
    public static func encode(_ file: SafetensorsFile) throws -> [UInt8] {
        let names = file.tensors.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var json = "{"
        var parts: [String] = []
        if !file.metadata.isEmpty {
            let keys = file.metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            parts.append("\"__metadata__\":{" + keys.map { "\(jsonString($0)):\(jsonString(file.metadata[$0]!))" }.joined(separator: ",") + "}")
        }
        var offset = 0
        for name in names {
            let t = file.tensors[name]!
            guard !name.isEmpty, name != "__metadata__" else {
                throw DataError.invalidArgument("Safetensors.write: tensor name \"\(name)\" is empty or reserved")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw DataError.invalidArgument("Safetensors.write: tensor '\(name)' has shape \(t.shape) but \(t.values.count) values")
            }
            if let i = t.values.firstIndex(where: { !$0.isFinite }) {
                throw DataError.invalidArgument("Safetensors.write: tensor '\(name)' has the non-finite value \(t.values[i]) at flat index \(i)")
            }
            let end = offset + 4 * t.values.count
            parts.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        json += parts.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        let n = UInt64(header.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(k)))) }
        out += header
        for name in names { appendLittleEndian(file.tensors[name]!.values, to: &out) }
        return out
    }

    /// A JSON string literal: quote, backslash and control characters escaped, the rest UTF-8.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Parses and validates a safetensors file in memory; `name` is used in messages.
    public static func decode(_ data: Data, name: String) throws -> SafetensorsFile {
        func bad(_ d: String) -> DataError { .malformed(path: name, detail: d) }
        let size = data.count
        guard size >= 8 else {
            throw bad("is too short to be a safetensors file: \(size) bytes, the header length alone takes 8")
        }
        var n64: UInt64 = 0
        for k in 0..<8 { n64 |= UInt64(data[data.startIndex + k]) << (8 * UInt64(k)) }
        guard n64 <= UInt64(size - 8) else {
            throw bad("has a header length of \(n64) bytes but only \(size - 8) bytes follow the length field")
        }
        let n = Int(n64)
        guard n <= maximumHeaderLength else { throw bad("has a header of \(n) bytes, more than the limit of \(maximumHeaderLength)") }
        let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + n))
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw bad("has a header that is not valid JSON (\(n) bytes starting \(DataError.clip(String(decoding: headerData.prefix(30), as: UTF8.self))))")
        }
        guard let entries = object as? [String: Any] else { throw bad("has a JSON header that is not an object") }

        var metadata: [String: String] = [:]
        struct Entry { var name: String; var shape: [Int]; var begin: Int; var end: Int }
        var list: [Entry] = []
        /// A non-negative JSON integer (not a boolean, not a fraction).
        func integer(_ v: Any) -> Int? {
            // Foundation gives NSNumbers; `is Bool` also matches the numbers 0 and 1, so booleans
            // are told apart by their type code ("c").
            guard let number = v as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
            guard let i = v as? Int, i >= 0 else { return nil }
            return i
        }
        for (key, value) in entries {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("has a __metadata__ entry that is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw bad("has metadata \"\(DataError.clip(k))\" whose value is not a string") }
                    metadata[k] = s
                }
                continue
            }
            let label = "tensor '\(DataError.clip(key))'"
            guard let e = value as? [String: Any] else { throw bad("has a \(label) entry that is not an object") }
            guard let dtype = e["dtype"] as? String else { throw bad("has a \(label) without a string dtype") }
            guard dtype == "F32" else {
                throw DataError.unsupported(path: name, detail: "\(label) has dtype \(DataError.clip(dtype)) (only F32 is read)")
            }
            guard let rawShape = e["shape"] as? [Any], let shape = Optional(rawShape.compactMap(integer)), shape.count == rawShape.count else {
                throw bad("has a \(label) whose shape is not a list of non-negative integers")
            }
            guard let rawOffsets = e["data_offsets"] as? [Any], rawOffsets.count == 2,
                  let begin = integer(rawOffsets[0]), let end = integer(rawOffsets[1]), begin <= end else {
                throw bad("has a \(label) whose data_offsets are not two integers [begin, end] with begin ≤ end")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= size else { throw bad("has a \(label) whose shape \(shape) is larger than the file") }
                count = p
            }
            guard count * 4 == end - begin else {
                throw bad("has a \(label) whose shape \(shape) needs \(count * 4) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            list.append(Entry(name: key, shape: shape, begin: begin, end: end))
        }

        let buffer = size - 8 - n
        let claimed = list.map(\.end).max() ?? 0
        guard claimed <= buffer else {
            throw bad("is truncated: header says \(claimed) bytes of tensor data, file has \(buffer)")
        }
        list.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0, previous = ""
        for e in list {
            if e.begin < position {
                throw bad("has overlapping tensors '\(DataError.clip(previous))' and '\(DataError.clip(e.name))' (bytes from \(e.begin) are used twice)")
            }
            if e.begin > position {
                throw bad("has a gap of \(e.begin - position) bytes in the tensor data before tensor '\(DataError.clip(e.name))'")
            }
            position = e.end
            previous = e.name
        }
        if position != buffer {
            throw bad("has \(buffer - position) bytes after the last tensor's data")
        }

        var tensors: [String: FloatTensor] = [:]
        let base = 8 + n
        try data.withUnsafeBytes { raw in
            for e in list {
                let values = loadLittleEndianFloats(raw.baseAddress! + base + e.begin, count: (e.end - e.begin) / 4)
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw DataError.nonFinite(path: name, location: "tensor '\(DataError.clip(e.name))' flat index \(i)", text: "\(values[i])")
                }
                tensors[e.name] = FloatTensor(uncheckedShape: e.shape, values: values)
            }
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }
}

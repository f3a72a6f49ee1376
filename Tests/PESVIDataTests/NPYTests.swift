import Foundation
import Testing
import PESVINumerics
@testable import PESVIData

/// Builds a `.npy` file by hand: magic, version, header length, the dict text padded to 64
/// bytes with "\n" at the end, then `data`.
func npyFile(descr: String, fortran: Bool = false, shape: String, data: [UInt8], major: UInt8 = 1) -> [UInt8] {
    let dict = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
    let lengthBytes = major == 1 ? 2 : 4
    let unpadded = 8 + lengthBytes + dict.utf8.count + 1
    let header = Array((dict + String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n").utf8)
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
    for k in 0..<lengthBytes { out.append(UInt8(truncatingIfNeeded: header.count >> (8 * k))) }
    return out + header + data
}

/// Little-endian bytes of fixed-width values.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v.littleEndian >> (8 * $0)) } }
}

@Suite struct NPYTests {
    @Test func roundTripIsBitIdentical() throws {
        var g = RandomGenerator(seed: 21)
        var values: [Float] = [0, -0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]
        while values.count < 7 * 13 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if f.isFinite { values.append(f) }
        }
        let m = try DataMatrix(rows: 7, cols: 13, values: values)
        let url = temporaryURL("npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try NPY.write(m, to: url)
        let back = try NPY.read(url)
        #expect(back.rows == 7 && back.cols == 13 && back.columnNames == nil)
        #expect(bits(back.values) == bits(values))
        #expect(try Data(contentsOf: url).count == 128 + 4 * 91)
    }

    /// The header against the specification, byte by byte: "\x93NUMPY", 1, 0, a little-endian
    /// UInt16 length, the dict repr, spaces, "\n", total a multiple of 64.
    @Test func headerBytesFollowTheSpecification() {
        let h = NPY.headerBytes(rows: 3, cols: 4)
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"   // 59 characters
        #expect(dict.utf8.count == 59)
        // 10 bytes of prefix + 59 + 1 ("\n") = 70; padded to 128 means 58 spaces, header length 118.
        let expected: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 0x01, 0x00, 118, 0]
            + Array(dict.utf8) + [UInt8](repeating: 0x20, count: 58) + [0x0A]
        #expect(h == expected)
        #expect(h.count == 128)
        // A long shape crosses into the next block.
        let big = NPY.headerBytes(rows: 123_456_789_012, cols: 1_000_000_000_000)
        #expect(big.count % 64 == 0 && big.last == 0x0A && big.count == Int(big[8]) + Int(big[9]) * 256 + 10)
    }

    @Test func readsEveryIntegerAndFloatDtype() throws {
        let expected: [Float] = [-3, 0, 5, 100, 7, 1]
        let unsigned: [Float] = [3, 0, 5, 100, 7, 1]
        let cases: [(String, [UInt8], [Float])] = [
            ("<f4", littleEndianBytes(expected.map(\.bitPattern)), expected),
            ("<f8", littleEndianBytes(expected.map { Double($0).bitPattern }), expected),
            ("<i1", littleEndianBytes(expected.map { Int8($0) }), expected),
            ("|i1", littleEndianBytes(expected.map { Int8($0) }), expected),
            ("<i2", littleEndianBytes(expected.map { Int16($0) }), expected),
            ("<i4", littleEndianBytes(expected.map { Int32($0) }), expected),
            ("<i8", littleEndianBytes(expected.map { Int64($0) }), expected),
            ("|u1", littleEndianBytes(unsigned.map { UInt8($0) }), unsigned),
            ("<u2", littleEndianBytes(unsigned.map { UInt16($0) }), unsigned),
            ("<u4", littleEndianBytes(unsigned.map { UInt32($0) }), unsigned),
            ("<u8", littleEndianBytes(unsigned.map { UInt64($0) }), unsigned),
        ]
        for (descr, data, values) in cases {
            let m = try NPY.decode(Data(npyFile(descr: descr, shape: "(2, 3)", data: data)), name: "t.npy")
            #expect(m.rows == 2 && m.cols == 3 && m.values == values, "\(descr)")
        }
        // Extreme integers convert to the nearest Float.
        let i8 = try NPY.decode(Data(npyFile(descr: "<i8", shape: "(2,)", data: littleEndianBytes([Int64.min, Int64.max]))), name: "t.npy")
        #expect(i8.values == [-9.223372e18, 9.223372e18])
    }

    @Test func versionsTwoAndThreeAndOneDimensional() throws {
        let data = littleEndianBytes([Float(1.5), -2, 4].map(\.bitPattern))
        for major: UInt8 in [1, 2, 3] {
            let m = try NPY.decode(Data(npyFile(descr: "<f4", shape: "(3,)", data: data, major: major)), name: "v.npy")
            #expect(m.rows == 3 && m.cols == 1 && m.values == [1.5, -2, 4], "version \(major)")
        }
    }

    func refusal(_ file: [UInt8]) -> String {
        dataError { _ = try NPY.decode(Data(file), name: "bad.npy") }?.description ?? ""
    }

    @Test func refusesUnsupportedVariantsByName() {
        let four = [UInt8](repeating: 0, count: 24)
        #expect(refusal(npyFile(descr: ">f4", shape: "(2, 3)", data: four)).contains("big-endian dtype '>f4'"))
        #expect(refusal(npyFile(descr: ">i8", shape: "(3,)", data: four)).contains("big-endian"))
        #expect(refusal(npyFile(descr: "<f4", fortran: true, shape: "(2, 3)", data: four)).contains("fortran_order True"))
        #expect(refusal(npyFile(descr: "<c8", shape: "(3,)", data: four)).contains("'<c8' (complex64)"))
        #expect(refusal(npyFile(descr: "|O", shape: "(3,)", data: four)).contains("'|O' (object)"))
        #expect(refusal(npyFile(descr: "<U2", shape: "(3,)", data: four)).contains("'<U2' (unicode string)"))
        #expect(refusal(npyFile(descr: "|b1", shape: "(3,)", data: [1, 0, 1])).contains("'|b1' (bool)"))
        #expect(refusal(npyFile(descr: "<f2", shape: "(3,)", data: [0, 0, 0, 0, 0, 0])).contains("'<f2' (float16)"))
        #expect(refusal(npyFile(descr: "<f4", shape: "(1, 2, 3)", data: four)).contains("3-d array with shape (1, 2, 3)"))
        #expect(refusal(npyFile(descr: "<f4", shape: "()", data: [0, 0, 0, 0])).contains("0-d array"))
        let structured = refusal(structuredFile())
        #expect(structured.contains("structured dtype"))
    }

    func structuredFile() -> [UInt8] {
        let dict = "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }"
        let header = Array((dict + String(repeating: " ", count: 128 - 10 - dict.utf8.count - 1) + "\n").utf8)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count), 0] + header + [UInt8](repeating: 0, count: 8)
    }

    @Test func refusesLyingHeadersAndDamagedFiles() {
        let data = littleEndianBytes([Float](repeating: 1, count: 6).map(\.bitPattern))
        let more = refusal(npyFile(descr: "<f4", shape: "(3, 3)", data: data))
        #expect(more == "bad.npy is truncated: shape (3, 3) of '<f4' needs 36 bytes of data, the file has 24")
        let less = refusal(npyFile(descr: "<f4", shape: "(5,)", data: data))
        #expect(less == "bad.npy has 4 bytes after the data for shape (5,) of '<f4' (20 bytes expected)")
        var badMagic = npyFile(descr: "<f4", shape: "(6,)", data: data)
        badMagic[1] = UInt8(ascii: "X")
        #expect(refusal(badMagic).contains("does not start with the magic"))
        let full = npyFile(descr: "<f4", shape: "(6,)", data: data)
        #expect(refusal(Array(full[0..<40])).contains("is truncated: the header says it is 118 bytes long"))
        #expect(refusal(Array(full[0..<9])).contains("header length field is incomplete"))
        var garbled = full
        garbled[10] = UInt8(ascii: "#")
        #expect(refusal(garbled).contains("unparsable header"))
        var version = full
        version[6] = 4
        #expect(refusal(version).contains("version 4.0"))
        #expect(refusal(npyFile(descr: "<f4", shape: "(0, 3)", data: [])).contains("no elements"))
    }

    @Test func refusesNonFiniteValuesWithTheirPosition() {
        var values: [Float] = [1, 2, 3, 4, 5, 6]
        values[5] = .nan
        let nan = refusal(npyFile(descr: "<f4", shape: "(2, 3)", data: littleEndianBytes(values.map(\.bitPattern))))
        #expect(nan.contains("flat index 5 (row 1, column 2)") && nan.contains("nan"))
        let inf = refusal(npyFile(descr: "<f8", shape: "(3, 2)", data: littleEndianBytes([1, 2, -Double.infinity, 4, 5, 6].map(\.bitPattern))))
        #expect(inf.contains("flat index 2 (row 1, column 0)") && inf.contains("-inf"))
        let overflow = refusal(npyFile(descr: "<f8", shape: "(2,)", data: littleEndianBytes([1, 1e300].map(\.bitPattern))))
        #expect(overflow.contains("flat index 1 (row 1, column 0)") && overflow.contains("1e+300"))
    }

    @Test func writerRefusesNonFiniteValues() throws {
        let m = try DataMatrix(rows: 1, cols: 2, values: [1, .infinity])
        #expect(dataError { _ = try NPY.encode(m) }?.description.contains("row 0, column 1") == true)
    }
}

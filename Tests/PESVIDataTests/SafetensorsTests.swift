import Foundation
import Testing
import PESVINumerics
@testable import PESVIData

@Suite struct SafetensorsTests {
    func sample() throws -> SafetensorsFile {
        var g = RandomGenerator(seed: 31)
        var weights: [Float] = []
        while weights.count < 12 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if f.isFinite { weights.append(f) }
        }
        return SafetensorsFile(
            tensors: ["decoder.weight": try FloatTensor(shape: [3, 4], values: weights),
                      "decoder.bias": try FloatTensor(shape: [3], values: [-0.0, 1, 2.5]),
                      "scale": try FloatTensor(shape: [], values: [0.25])],
            metadata: ["format": "pt", "note": "quote \" and \\ and é"])
    }

    /// An 8-byte little-endian length, a JSON header, then `data`.
    func fileBytes(_ json: String, data: [UInt8], pad: Bool = true) -> [UInt8] {
        var header = Array(json.utf8)
        while pad && header.count % 8 != 0 { header.append(0x20) }
        let n = UInt64(header.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header + data
    }

    func refusal(_ bytes: [UInt8]) -> DataError? {
        dataError { _ = try Safetensors.decode(Data(bytes), name: "model.safetensors") }
    }

    @Test func roundTripIsBitIdenticalAndDeterministic() throws {
        let file = try sample()
        let url = temporaryURL("safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Safetensors.write(file, to: url)
        let back = try Safetensors.read(url)
        #expect(back.metadata == file.metadata)
        #expect(Set(back.tensors.keys) == Set(file.tensors.keys))
        for (name, t) in file.tensors {
            #expect(back.tensors[name]?.shape == t.shape)
            #expect(bits(back.tensors[name]?.values ?? []) == bits(t.values), "\(name)")
        }
        #expect(try Safetensors.encode(file) == Safetensors.encode(back))
    }

    /// The format check: parse the written bytes with nothing from the module under test.
    @Test func headerParsesIndependently() throws {
        let file = try sample()
        let bytes = try Safetensors.encode(file)
        let n = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        #expect((8 + n) % 8 == 0)
        let headerBytes = Array(bytes[8..<(8 + n)])
        // Padding is spaces only, after the closing brace.
        let close = headerBytes.lastIndex(of: UInt8(ascii: "}"))!
        #expect(headerBytes[(close + 1)...].allSatisfy { $0 == 0x20 })
        let header = try #require(try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any])
        #expect(header["__metadata__"] as? [String: String] == file.metadata)
        // Sorted names, contiguous offsets in that order.
        let names = ["decoder.bias", "decoder.weight", "scale"]
        #expect(Set(header.keys) == Set(names + ["__metadata__"]))
        var offset = 0
        for name in names {
            let e = try #require(header[name] as? [String: Any])
            #expect(e["dtype"] as? String == "F32")
            let shape = try #require(e["shape"] as? [Int])
            let offsets = try #require(e["data_offsets"] as? [Int])
            #expect(shape == file.tensors[name]!.shape)
            #expect(offsets == [offset, offset + 4 * shape.reduce(1, *)])
            let data = bytes[(8 + n + offsets[0])..<(8 + n + offsets[1])]
            let values = stride(from: data.startIndex, to: data.endIndex, by: 4).map { i in
                Float(bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24)
            }
            #expect(bits(values) == bits(file.tensors[name]!.values))
            offset = offsets[1]
        }
        #expect(bytes.count == 8 + n + offset)
        // The metadata comes first in the text, as the reference implementation writes it.
        #expect(String(decoding: headerBytes, as: UTF8.self).hasPrefix("{\"__metadata__\":{\"format\":\"pt\","))
    }

    @Test func truncatedFileIsRefused() throws {
        let bytes = try Safetensors.encode(try sample())
        let n = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        let cut = Array(bytes.dropLast(10))
        #expect(refusal(cut)?.description == "model.safetensors is truncated: header says 64 bytes of tensor data, file has 54")
        #expect(refusal(Array(bytes[0..<(8 + n - 3)]))?.description.contains("has a header length of \(n) bytes but only \(n - 3) bytes follow") == true)
        #expect(refusal(Array(bytes[0..<5]))?.description.contains("too short") == true)
    }

    @Test func corruptedHeadersAreRefused() throws {
        var bytes = try Safetensors.encode(try sample())
        bytes[8] = UInt8(ascii: "[")     // the JSON no longer parses
        #expect(refusal(bytes)?.description.contains("not valid JSON") == true)
        let four: [UInt8] = [0, 0, 0, 0]
        let cases: [(String, [UInt8], String)] = [
            (#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, four + four, "tensor 'a' has dtype F64 (only F32 is read)"),
            (#"{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#, four, "dtype BF16"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, four, "shape [2] needs 8 bytes but data_offsets [0, 4] span 4"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, four + four, "overlapping tensors 'a' and 'b'"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, four + four, "gap of 4 bytes"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, four + four, "4 bytes after the last tensor"),
            (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, four, "shape is not a list of non-negative integers"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, four, "data_offsets are not two integers"),
            (#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, four, "shape is not a list of non-negative integers"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#, four, "data_offsets are not two integers"),
            (#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, four, "without a string dtype"),
            (#"{"__metadata__":{"k":3}}"#, [], "metadata \"k\" whose value is not a string"),
            (#"[1,2]"#, [], "not an object"),
        ]
        for (json, data, expected) in cases {
            let message = refusal(fileBytes(json, data: data))?.description ?? ""
            #expect(message.contains(expected), "\(json): got \(message)")
            #expect(message.hasPrefix("model.safetensors"))
        }
        // Absurd header length.
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + four
        #expect(refusal(huge)?.description.contains("header length") == true)
    }

    @Test func nonFiniteValuesAreRefused() throws {
        let nan = fileBytes(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                            data: [0, 0, 0x80, 0x3F] + [0, 0, 0xC0, 0x7F])
        #expect(refusal(nan)?.description.contains("tensor 'w' flat index 1") == true)
        let t = try FloatTensor(shape: [2], values: [1, .infinity])
        #expect(dataError { _ = try Safetensors.encode(SafetensorsFile(tensors: ["w": t])) }?.description.contains("flat index 1") == true)
    }

    @Test func metadataOnlyAndEmptyTensorsAreValid() throws {
        let file = SafetensorsFile(tensors: ["empty": try FloatTensor(shape: [0, 3], values: [])], metadata: [:])
        let back = try Safetensors.decode(Data(try Safetensors.encode(file)), name: "e.safetensors")
        #expect(back == file)
        #expect(throws: DataError.self) { _ = try FloatTensor(shape: [2, 2], values: [1]) }
    }
}

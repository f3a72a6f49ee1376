/// Float32 values as little-endian bytes, the layout of `.npy` `<f4` data and safetensors F32.

/// Appends the bit patterns of `values` to `out`, 4 little-endian bytes each.
func appendLittleEndian(_ values: [Float], to out: inout [UInt8]) {
    let start = out.count
    out.append(contentsOf: repeatElement(0, count: 4 * values.count))
    values.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            for i in 0..<src.count {
                dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self)
            }
        }
    }
}

/// `count` floats read from 4-byte little-endian bit patterns at `p` (any alignment).
func loadLittleEndianFloats(_ p: UnsafeRawPointer, count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buf, n in
        for i in 0..<count {
            buf[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
        n = count
    }
}

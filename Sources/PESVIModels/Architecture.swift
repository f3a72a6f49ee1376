/// The decoder architectures of the paper (section 4.2) and custom hidden widths.
///
/// With latent size |z| and data width d, h = min(2|z|, 128):
/// - Arch1: z → x
/// - Arch2: z → h → x
/// - Arch3: z → h → h → x
/// The encoder mirrors the decoder: x → … → 2|z| (the μ and log σ² halves).
public enum Architecture: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    case arch1, arch2, arch3
    /// Hidden widths from the latent side outwards, e.g. [128, 256] means z → 128 → 256 → x.
    case custom(hidden: [Int])

    /// The paper's architecture by number (1, 2 or 3), or nil.
    public init?(number: Int) {
        switch number {
        case 1: self = .arch1
        case 2: self = .arch2
        case 3: self = .arch3
        default: return nil
        }
    }

    /// Hidden widths of the decoder, latent side first.
    public func hiddenWidths(latent: Int) -> [Int] {
        let h = min(2 * latent, 128)
        switch self {
        case .arch1: return []
        case .arch2: return [h]
        case .arch3: return [h, h]
        case .custom(let hidden): return hidden
        }
    }

    /// Decoder widths: [|z|, hidden…, d].
    public func decoderWidths(latent: Int, data: Int) -> [Int] { [latent] + hiddenWidths(latent: latent) + [data] }

    /// Encoder widths, the decoder mirrored: [d, hidden reversed…, 2|z|].
    public func encoderWidths(latent: Int, data: Int) -> [Int] {
        [data] + hiddenWidths(latent: latent).reversed() + [2 * latent]
    }

    public var description: String {
        switch self {
        case .arch1: return "Arch1"
        case .arch2: return "Arch2"
        case .arch3: return "Arch3"
        case .custom(let h): return "custom[\(h.map(String.init).joined(separator: ","))]"
        }
    }
}

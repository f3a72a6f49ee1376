/// Errors raised by the checked entry points of the numerics core.
///
/// The unchecked pointer kernels never throw: they trust their caller. Every checked entry
/// point validates shapes and buffer sizes first and throws one of these, naming the shapes,
/// so misuse stops with a message instead of reading or writing out of bounds.
public enum NumericsError: Error, Equatable, CustomStringConvertible {
    /// Operand shapes do not agree; the message names every shape involved.
    case shapeMismatch(String)
    /// A buffer holds fewer elements than its stated shape needs.
    case bufferTooSmall(String)
    /// An argument is outside its valid range (a negative size, a leading dimension too small).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .bufferTooSmall(let m): return "buffer too small: \(m)"
        case .invalidArgument(let m): return "invalid argument: \(m)"
        }
    }
}

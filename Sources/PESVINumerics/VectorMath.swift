import Foundation

/// Elementwise transcendental functions over flat buffers.
///
/// Contract: `y[i] = f(x[i])` for `i in 0..<count`; `x` and `y` may be the same buffer.
/// (Reference scalar implementation; a vectorized one replaces it.)
public enum VectorMath {
    /// y = exp(x). Overflow gives +inf, underflow 0, NaN stays NaN.
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.exp(x[i]) }
    }
    /// y = log(x). log(0) = −inf, log(negative) = NaN.
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.log(x[i]) }
    }
    /// y = exp(scale · x): the standard deviation exp(½ log σ²) with scale = 0.5.
    public static func expScaled(_ x: UnsafePointer<Float>, scale: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.exp(scale * x[i]) }
    }
}

import PESVICPUFeatures

/// Cache prefetch hints for gathers of rows at addresses the hardware cannot predict (the
/// shuffled batch rows of a training epoch). Hints only: they never fault, whatever the
/// address, and never change a result.
public enum Prefetch {
    /// Hints that the `bytes` bytes at `p` will be read soon.
    @inlinable @inline(__always)
    public static func read(_ p: UnsafeRawPointer, bytes: Int) {
        pesvi_prefetch(p, bytes, 0)
    }

    /// Hints that the `bytes` bytes at `p` will be read and written soon.
    @inlinable @inline(__always)
    public static func write(_ p: UnsafeRawPointer, bytes: Int) {
        pesvi_prefetch(p, bytes, 1)
    }
}

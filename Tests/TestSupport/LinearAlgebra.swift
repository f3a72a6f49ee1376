/// Solves the n×n system A·s = r (A row-major) in Double by Gaussian elimination with partial
/// pivoting: an independent reference for least-squares checks.
public func solveLinearSystem(_ a0: [Double], _ r0: [Double]) -> [Double] {
    let n = r0.count
    precondition(a0.count == n * n, "solveLinearSystem: A has \(a0.count) entries for n = \(n)")
    var a = a0, r = r0
    for col in 0..<n {
        let piv = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
        if piv != col { for k in 0..<n { a.swapAt(col * n + k, piv * n + k) }; r.swapAt(col, piv) }
        for row in (col + 1)..<n {
            let f = a[row * n + col] / a[col * n + col]
            for k in col..<n { a[row * n + k] -= f * a[col * n + k] }
            r[row] -= f * r[col]
        }
    }
    var s = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        var t = r[row]
        for k in (row + 1)..<n { t -= a[row * n + k] * s[k] }
        s[row] = t / a[row * n + row]
    }
    return s
}

import Foundation
import Testing
import PESVINumerics
import TestSupport
@testable import PESVIModels

@Suite struct DenseNetworkTests {
    /// Loss L = Σ c ⊙ y for fixed random c: ∂L/∂y = c. Checked against finite differences for
    /// every parameter of a small network and every input, in each depth.
    @Test(arguments: [[3, 4], [3, 5, 4], [4, 6, 5, 3], [2, 7, 7, 7, 3]])
    func backwardMatchesFiniteDifferences(widths: [Int]) {
        var rng = RandomGenerator(seed: 3)
        let net = DenseNetwork(widths: widths, rng: &rng)
        let rows = 5
        let x = FloatBuffer(rng.normalArray(count: rows * widths[0]))
        let c = FloatBuffer(rng.normalArray(count: rows * widths.last!))
        let ws = NetworkWorkspace(network: net, maxRows: rows)
        func loss() -> Double {
            let y = net.forward(x.pointer, rows: rows, workspace: ws)
            var s = 0.0
            for i in 0..<c.count { s += Double(y[i]) * Double(c[i]) }
            return s
        }
        _ = loss()
        let gp = FloatBuffer(count: net.parameterCount), gx = FloatBuffer(count: x.count)
        net.backward(x.pointer, rows: rows, workspace: ws, outputGradient: c.pointer, parameterGradients: gp.pointer, inputGradient: gx.pointer)
        let pIdx = Array(0..<net.parameterCount)
        let numP = numericGradient(net.parameters.pointer, indices: pIdx, h: 1e-3, loss)
        let numX = numericGradient(x.pointer, indices: Array(0..<x.count), h: 1e-3, loss)
        #expect(worstGradientError(analytic: pIdx.map { Double(gp[$0]) }, numeric: numP, scale: 1) < 2e-2)
        #expect(worstGradientError(analytic: (0..<x.count).map { Double(gx[$0]) }, numeric: numX, scale: 1) < 2e-2)
    }

    /// The forward pass with smoothed hidden activations: all temperatures 0 is the plain pass
    /// bit for bit; otherwise each row and hidden layer gets τ·log(1 + e^{a/τ}) at its own τ
    /// (one row at τ = 0 keeps its ReLU), against a Double reference, in every depth.
    @Test(arguments: [[3, 5, 4], [4, 6, 5, 3], [2, 7, 7, 7, 3]])
    func smoothedForwardIsTheSoftplusPerRowAndLayer(widths: [Int]) {
        var rng = RandomGenerator(seed: 9)
        let net = DenseNetwork(widths: widths, rng: &rng)
        let rows = 6, hidden = widths.count - 2, stride = hidden + 1  // a stride above the layer count
        let x = FloatBuffer(rng.normalArray(count: rows * widths[0], std: 2))
        let ws = NetworkWorkspace(network: net, maxRows: rows)
        let plain = Array(UnsafeBufferPointer(start: net.forward(x.pointer, rows: rows, workspace: ws), count: rows * widths.last!))
        let zero = FloatBuffer(count: rows * stride)
        let atZero = Array(UnsafeBufferPointer(start: net.forward(x.pointer, rows: rows, workspace: ws, temperatures: zero.pointer, temperatureStride: stride),
                                               count: rows * widths.last!))
        #expect(atZero == plain)
        var taus = [Float](repeating: 0, count: rows * stride)
        for r in 0..<rows where r != 2 { for l in 0..<hidden { taus[r * stride + l] = 0.05 + 0.4 * Float(r + l) } }
        let t = FloatBuffer(taus)
        let y = net.forward(x.pointer, rows: rows, workspace: ws, temperatures: t.pointer, temperatureStride: stride)
        let p = net.parameters.array.map(Double.init)
        var worst = 0.0
        for r in 0..<rows {
            var a = (0..<widths[0]).map { Double(x[r * widths[0] + $0]) }
            for l in 1...net.layerCount {
                let nIn = widths[l - 1], nOut = widths[l]
                var v = Array(p[net.biasOffsets[l - 1]..<(net.biasOffsets[l - 1] + nOut)])
                for i in 0..<nIn { for o in 0..<nOut { v[o] += a[i] * p[net.weightOffsets[l - 1] + i * nOut + o] } }
                if l < net.layerCount {
                    let tau = Double(taus[r * stride + l - 1])
                    v = v.map { tau > 0 ? tau * (max($0 / tau, 0) + log1p(exp(-abs($0) / tau))) : max($0, 0) }
                }
                a = v
            }
            for o in 0..<widths.last! { worst = max(worst, abs(Double(y[r * widths.last! + o]) - a[o]) / max(1, abs(a[o]))) }
        }
        #expect(worst < 1e-5, "smoothed forward off by \(worst)")
        // The smoothing is not a no-op: rows at τ > 0 differ from the ReLU pass.
        #expect((0..<widths.last!).contains { y[$0] != plain[$0] })
    }

    /// A partial forward pass to hidden layer k, then the backward pass from a loss on that
    /// layer's output L = Σ c ⊙ a_k, against finite differences in the input.
    @Test(arguments: [([3, 5, 4], 1), ([4, 6, 5, 3], 1), ([4, 6, 5, 3], 2)])
    func inputGradientFromHiddenMatchesFiniteDifferences(widths: [Int], k: Int) {
        var rng = RandomGenerator(seed: 8)
        let net = DenseNetwork(widths: widths, rng: &rng)
        let rows = 4
        let x = FloatBuffer(rng.normalArray(count: rows * widths[0]))
        let c = rng.normalArray(count: rows * widths[k])
        let ws = NetworkWorkspace(network: net, maxRows: rows)
        func loss() -> Double {
            let a = net.forward(x.pointer, rows: rows, workspace: ws, layers: k)
            var s = 0.0
            for i in 0..<c.count { s += Double(a[i]) * Double(c[i]) }
            return s
        }
        _ = loss()
        let g = FloatBuffer(c), gx = FloatBuffer(count: x.count)
        net.inputGradient(fromHidden: k, x.pointer, rows: rows, workspace: ws, hiddenGradient: g.pointer, inputGradient: gx.pointer)
        let numX = numericGradient(x.pointer, indices: Array(0..<x.count), h: 1e-3, loss)
        #expect(worstGradientError(analytic: (0..<x.count).map { Double(gx[$0]) }, numeric: numX, scale: 1) < 2e-2)
        // The partial pass leaves the same hidden output as the full pass.
        let partial = Array(UnsafeBufferPointer(start: net.forward(x.pointer, rows: rows, workspace: ws, layers: k), count: rows * widths[k]))
        net.forward(x.pointer, rows: rows, workspace: ws)
        let full = Array(UnsafeBufferPointer(start: ws.activations[k - 1].pointer, count: rows * widths[k]))
        #expect(partial == full)
        #expect(net.forward(x.pointer, rows: rows, workspace: ws, layers: 0) == UnsafePointer(x.pointer))
    }

    /// J·u against central differences of the forward pass along u, on linear and ReLU
    /// networks; the product leaves the forward pass's activations as they were.
    @Test(arguments: [[3, 4], [3, 5, 4], [4, 6, 5, 3], [2, 7, 7, 7, 3]])
    func jacobianVectorProductMatchesFiniteDifferences(widths: [Int]) {
        var rng = RandomGenerator(seed: 12)
        let net = DenseNetwork(widths: widths, rng: &rng)
        let rows = 6, nIn = widths[0], nOut = widths.last!
        let x = rng.normalArray(count: rows * nIn), u = FloatBuffer(rng.normalArray(count: rows * nIn))
        let ws = NetworkWorkspace(network: net, maxRows: rows)
        func output(_ t: Double) -> [Double] {
            let shifted = FloatBuffer((0..<x.count).map { Float(Double(x[$0]) + t * Double(u[$0])) })
            let y = net.forward(shifted.pointer, rows: rows, workspace: ws)
            return (0..<rows * nOut).map { Double(y[$0]) }
        }
        let h = 1e-3
        let plus = output(h), minus = output(-h)
        let numeric = (0..<plus.count).map { (plus[$0] - minus[$0]) / (2 * h) }
        let base = FloatBuffer(x)
        net.forward(base.pointer, rows: rows, workspace: ws)
        func activations() -> [[Float]] { zip(ws.activations, widths.dropFirst()).map { Array(UnsafeBufferPointer(start: $0.pointer, count: rows * $1)) } }
        let before = activations()
        let jv = FloatBuffer(count: rows * nOut)
        net.jacobianVectorProduct(u.pointer, rows: rows, workspace: ws, output: jv.pointer)
        #expect(worstGradientError(analytic: (0..<jv.count).map { Double(jv[$0]) }, numeric: numeric, scale: 1) < 2e-2)
        #expect(activations() == before)
        // Stopped before the output layer, it gives v with J·u = v·W (W the output layer's
        // weights, in Double here); with 0 layers, u itself.
        let L = net.layerCount, hLast = widths[L - 1]
        let v = FloatBuffer(count: rows * hLast)
        net.jacobianVectorProduct(u.pointer, rows: rows, workspace: ws, output: v.pointer, layers: L - 1)
        let w = net.parameters.pointer + net.weightOffsets[L - 1]
        for r in 0..<rows {
            for j in 0..<nOut {
                let viaV = (0..<hLast).reduce(0.0) { $0 + Double(v[r * hLast + $1]) * Double(w[$1 * nOut + j]) }
                #expect(abs(viaV - Double(jv[r * nOut + j])) <= 1e-5 * max(1, abs(viaV)))
            }
        }
        let same = FloatBuffer(count: rows * nIn)
        net.jacobianVectorProduct(u.pointer, rows: rows, workspace: ws, output: same.pointer, layers: 0)
        #expect(same.array == u.array)
        #expect(activations() == before)
    }

    /// Passes with the weights packed once (``PackedWeights``, as test-time inference runs them)
    /// give the results of passes without, bit for bit: forward, partial forward, backward
    /// (parameter and input gradients), the input gradient from a hidden layer and J·u, with
    /// fewer than 16 rows (the unpacked few-rows product) and more, for linear and ReLU networks
    /// of the paper's shapes.
    @Test(arguments: [[3, 4], [16, 32, 64], [64, 128, 300], [2, 7, 7, 7, 3], [32, 64, 64, 64]])
    func packedWeightsGiveTheSamePassesBitForBit(widths: [Int]) {
        var rng = RandomGenerator(seed: 31)
        let net = DenseNetwork(widths: widths, rng: &rng)
        let packed = PackedWeights(network: net)
        let L = net.layerCount, nIn = widths[0], nOut = widths[L]
        for rows in [5, 40] {
            let x = FloatBuffer(rng.normalArray(count: rows * nIn)), u = FloatBuffer(rng.normalArray(count: rows * nIn))
            let c = FloatBuffer(rng.normalArray(count: rows * nOut))
            let hiddenGradient = rng.normalArray(count: rows * widths[1])
            func passes(_ ws: NetworkWorkspace) -> [[Float]] {
                var out: [[Float]] = []
                if L > 1 {
                    let a = net.forward(x.pointer, rows: rows, workspace: ws, layers: L - 1)
                    out.append(Array(UnsafeBufferPointer(start: a, count: rows * widths[L - 1])))
                }
                let y = net.forward(x.pointer, rows: rows, workspace: ws)
                out.append(Array(UnsafeBufferPointer(start: y, count: rows * nOut)))
                let gp = FloatBuffer(count: net.parameterCount), gx = FloatBuffer(count: rows * nIn)
                net.backward(x.pointer, rows: rows, workspace: ws, outputGradient: c.pointer, parameterGradients: gp.pointer, inputGradient: gx.pointer)
                out.append(gp.array)
                out.append(gx.array)
                let jv = FloatBuffer(count: rows * nOut)
                net.jacobianVectorProduct(u.pointer, rows: rows, workspace: ws, output: jv.pointer)
                out.append(jv.array)
                if L > 1 {
                    let hidden = FloatBuffer(hiddenGradient)
                    let gh = FloatBuffer(count: rows * nIn)
                    net.inputGradient(fromHidden: 1, x.pointer, rows: rows, workspace: ws, hiddenGradient: hidden.pointer, inputGradient: gh.pointer)
                    out.append(gh.array)
                }
                return out
            }
            let packedWorkspace = NetworkWorkspace(network: net, maxRows: rows, packedWeights: packed)
            let plain = passes(NetworkWorkspace(network: net, maxRows: rows))
            let withPacked = passes(packedWorkspace)
            #expect(plain.count == withPacked.count)
            for (k, (p, q)) in zip(plain, withPacked).enumerated() {
                #expect(Self.firstDifference(p, q) == nil, "\(widths), \(rows) rows: pass result \(k) differs with packed weights")
            }
            // New weights: the packed copy is a snapshot until refresh(), then the same again.
            for k in 0..<net.parameterCount { net.parameters[k] *= 1.25 }
            let changed = passes(NetworkWorkspace(network: net, maxRows: rows))
            #expect(Self.firstDifference(passes(packedWorkspace)[0], changed[0]) != nil, "\(widths): packed weights followed the network without refresh()")
            packed.refresh()
            let refreshed = passes(packedWorkspace)
            for (k, (p, q)) in zip(changed, refreshed).enumerated() {
                #expect(Self.firstDifference(p, q) == nil, "\(widths), \(rows) rows: pass result \(k) differs after refresh()")
            }
        }
    }

    /// The first index where two arrays differ bit for bit (or in length), else nil.
    static func firstDifference(_ p: [Float], _ q: [Float]) -> Int? {
        guard p.count == q.count else { return min(p.count, q.count) }
        return p.indices.first { p[$0].bitPattern != q[$0].bitPattern }
    }

    @Test func accumulateAddsToExistingGradients() {
        var rng = RandomGenerator(seed: 4)
        let net = DenseNetwork(widths: [3, 4, 2], rng: &rng)
        let x = FloatBuffer(rng.normalArray(count: 6)), c = FloatBuffer(rng.normalArray(count: 4))
        let ws = NetworkWorkspace(network: net, maxRows: 2)
        net.forward(x.pointer, rows: 2, workspace: ws)
        let g1 = FloatBuffer(count: net.parameterCount)
        net.backward(x.pointer, rows: 2, workspace: ws, outputGradient: c.pointer, parameterGradients: g1.pointer, inputGradient: nil)
        let g2 = g1.copy()
        net.backward(x.pointer, rows: 2, workspace: ws, outputGradient: c.pointer, parameterGradients: g2.pointer, accumulate: true, inputGradient: nil)
        for i in 0..<g1.count { #expect(abs(g2[i] - 2 * g1[i]) <= 1e-6 * max(1, abs(g1[i]))) }
    }

    @Test func architecturesFollowThePaper() {
        #expect(Architecture.arch1.decoderWidths(latent: 16, data: 300) == [16, 300])
        #expect(Architecture.arch2.decoderWidths(latent: 16, data: 300) == [16, 32, 300])
        #expect(Architecture.arch3.decoderWidths(latent: 128, data: 300) == [128, 128, 128, 300])
        #expect(Architecture.arch2.encoderWidths(latent: 64, data: 300) == [300, 128, 128])
        #expect(Architecture.custom(hidden: [10, 20]).encoderWidths(latent: 4, data: 9) == [9, 20, 10, 8])
    }
}

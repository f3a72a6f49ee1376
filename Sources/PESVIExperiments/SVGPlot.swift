import Foundation

/// A line plot rendered as a self-contained SVG document, e.g. "test objective vs step" for
/// SVI and PE-SVI on logarithmic axes.
///
/// Contract of `svg()`:
/// - The output is a well-formed XML document with an `<svg>` root; all text (title, labels,
///   series names, colors) is escaped.
/// - Each series produces exactly one `<polyline class="series">` whose `points` attribute holds
///   one `x,y` pair per *plotted* point, in input order (plus a `<circle>` when that is a single
///   point, so it stays visible). Points are the pairs `(xs[i], ys[i])` for
///   `i < min(xs.count, ys.count)`; a pair is skipped when a coordinate is not finite or is ≤ 0
///   on a log axis. Skipped points are not drawn; their neighbours are joined.
///   A series with no plotted point gives an empty `points` attribute but keeps its legend entry.
/// - Log axes have major ticks and labels at every decade (1, 10, 100, … written plainly from
///   0.0001 to 100000, as 1e6 etc. beyond; only every k-th decade is labelled when there are more
///   than 10) and unlabelled minor ticks at 2…9 × 10^k. Linear axes get 1-2-5 "nice" ticks.
/// - Axis ranges cover all plotted points: decades on log axes, multiples of the tick step on
///   linear axes. With no plotted point at all the axes show [0, 1] (linear) or [1, 10] (log).
/// - Tick labels carry `class="xtick"` / `class="ytick"`, tick marks `class="major"` /
///   `class="minor"`, so the structure can be checked by tools.
public struct LinePlot: Sendable {
    /// One curve: `name` appears in the legend; `color` is any SVG color (default: a palette).
    public struct Series: Sendable {
        public var name: String
        public var xs: [Double]
        public var ys: [Double]
        public var color: String?
        public init(name: String, xs: [Double], ys: [Double], color: String? = nil) {
            self.name = name
            self.xs = xs
            self.ys = ys
            self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xLog: Bool
    public var yLog: Bool
    public var series: [Series]
    /// Size of the whole picture in SVG user units (pixels).
    public var width: Double
    public var height: Double

    public init(
        title: String, xLabel: String, yLabel: String, xLog: Bool = false, yLog: Bool = false,
        series: [Series] = [], width: Double = 720, height: Double = 450
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xLog = xLog
        self.yLog = yLog
        self.series = series
        self.width = width
        self.height = height
    }

    /// Colors used for series without their own (Tableau 10), cycled.
    public static let palette = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    ]

    /// Writes `svg()` to `url` (UTF-8).
    public func write(to url: URL) throws {
        try svg().write(to: url, atomically: true, encoding: .utf8)
    }

    /// The plot as an SVG document (see the type's contract).
    public func svg() -> String {
        // Points that can be plotted, per series.
        let kept: [[(Double, Double)]] = series.map { s in
            (0..<min(s.xs.count, s.ys.count)).compactMap { i in
                let x = s.xs[i], y = s.ys[i]
                guard x.isFinite, y.isFinite, !(xLog && x <= 0), !(yLog && y <= 0) else { return nil }
                return (x, y)
            }
        }
        let allX = kept.flatMap { $0.map(\.0) }, allY = kept.flatMap { $0.map(\.1) }
        let xAxis = PlotAxis(values: allX, log: xLog)
        let yAxis = PlotAxis(values: allY, log: yLog)

        // Layout: legend to the right of the plot area, so it never hides a curve.
        let longestName = series.map(\.name.count).max() ?? 0
        let legendWidth = series.isEmpty ? 0.0 : 40 + 7 * Double(min(longestName, 40))
        let left = 78.0, top = title.isEmpty ? 20.0 : 44.0, bottom = 56.0
        let right = 16 + legendWidth
        let plotW = max(40, width - left - right), plotH = max(40, height - top - bottom)
        func px(_ x: Double) -> Double { left + xAxis.fraction(x) * plotW }
        func py(_ y: Double) -> Double { top + (1 - yAxis.fraction(y)) * plotH }

        var out = ""
        func line(_ s: String) { out += s; out += "\n" }
        line(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        line(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="sans-serif" font-size="12">"#)
        line(#"<rect x="0" y="0" width="\#(fmt(width))" height="\#(fmt(height))" fill="white"/>"#)
        if !title.isEmpty {
            line(#"<text class="title" x="\#(fmt(left + plotW / 2))" y="26" text-anchor="middle" font-size="15" font-weight="bold">\#(Self.escape(title))</text>"#)
        }

        // Grid, ticks and labels.
        line(#"<g class="x-axis">"#)
        for t in xAxis.ticks {
            let x = fmt(px(t.value))
            if t.major {
                line(#"<line class="grid" x1="\#(x)" y1="\#(fmt(top))" x2="\#(x)" y2="\#(fmt(top + plotH))" stroke="rgb(228,228,228)"/>"#)
            }
            let len = t.major ? 6.0 : 3.0
            line(#"<line class="\#(t.major ? "major" : "minor")" x1="\#(x)" y1="\#(fmt(top + plotH))" x2="\#(x)" y2="\#(fmt(top + plotH + len))" stroke="black"/>"#)
            if let label = t.label {
                line(#"<text class="xtick" x="\#(x)" y="\#(fmt(top + plotH + 20))" text-anchor="middle">\#(Self.escape(label))</text>"#)
            }
        }
        line("</g>")
        line(#"<g class="y-axis">"#)
        for t in yAxis.ticks {
            let y = fmt(py(t.value))
            if t.major {
                line(#"<line class="grid" x1="\#(fmt(left))" y1="\#(y)" x2="\#(fmt(left + plotW))" y2="\#(y)" stroke="rgb(228,228,228)"/>"#)
            }
            let len = t.major ? 6.0 : 3.0
            line(#"<line class="\#(t.major ? "major" : "minor")" x1="\#(fmt(left - len))" y1="\#(y)" x2="\#(fmt(left))" y2="\#(y)" stroke="black"/>"#)
            if let label = t.label {
                line(#"<text class="ytick" x="\#(fmt(left - 9))" y="\#(y)" dy="0.35em" text-anchor="end">\#(Self.escape(label))</text>"#)
            }
        }
        line("</g>")
        line(#"<rect class="frame" x="\#(fmt(left))" y="\#(fmt(top))" width="\#(fmt(plotW))" height="\#(fmt(plotH))" fill="none" stroke="black"/>"#)
        line(#"<text class="xlabel" x="\#(fmt(left + plotW / 2))" y="\#(fmt(height - 12))" text-anchor="middle">\#(Self.escape(xLabel))</text>"#)
        let yMid = fmt(top + plotH / 2)
        line(#"<text class="ylabel" x="18" y="\#(yMid)" text-anchor="middle" transform="rotate(-90 18 \#(yMid))">\#(Self.escape(yLabel))</text>"#)

        // Curves.
        for (k, s) in series.enumerated() {
            let color = Self.escape(s.color ?? Self.palette[k % Self.palette.count])
            let pts = kept[k].map { "\(fmt(px($0.0))),\(fmt(py($0.1)))" }.joined(separator: " ")
            line(#"<polyline class="series" data-name="\#(Self.escape(s.name))" points="\#(pts)" fill="none" stroke="\#(color)" stroke-width="1.8" stroke-linejoin="round"/>"#)
            if kept[k].count == 1, let p = kept[k].first {
                line(#"<circle cx="\#(fmt(px(p.0)))" cy="\#(fmt(py(p.1)))" r="3" fill="\#(color)"/>"#)
            }
        }

        // Legend.
        if !series.isEmpty {
            line(#"<g class="legend">"#)
            let lx = left + plotW + 14
            for (k, s) in series.enumerated() {
                let color = Self.escape(s.color ?? Self.palette[k % Self.palette.count])
                let ly = top + 10 + 18 * Double(k)
                line(#"<line x1="\#(fmt(lx))" y1="\#(fmt(ly))" x2="\#(fmt(lx + 20))" y2="\#(fmt(ly))" stroke="\#(color)" stroke-width="2.5"/>"#)
                var name = s.name
                if name.count > 40 { name = String(name.prefix(39)) + "…" }
                line(#"<text class="legend-entry" x="\#(fmt(lx + 26))" y="\#(fmt(ly))" dy="0.35em">\#(Self.escape(name))</text>"#)
            }
            line("</g>")
        }
        if allX.isEmpty {
            line(#"<text class="no-data" x="\#(fmt(left + plotW / 2))" y="\#(fmt(top + plotH / 2))" text-anchor="middle" fill="rgb(136,136,136)">no data</text>"#)
        }
        line("</svg>")
        return out
    }

    /// Escapes text for XML character data and attribute values.
    public static func escape(_ s: String) -> String {
        var r = ""
        r.reserveCapacity(s.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": r += "&amp;"
            case "<": r += "&lt;"
            case ">": r += "&gt;"
            case "\"": r += "&quot;"
            case "'": r += "&apos;"
            default:
                // Control characters other than tab/newline are not allowed in XML 1.0.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" && ch != "\r" { r += " " } else { r.unicodeScalars.append(ch) }
            }
        }
        return r
    }
}

/// Coordinates with two decimals (enough for pixels, keeps files small).
private func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

/// One tick: `label` is nil for unlabelled (minor or thinned) ticks.
struct PlotTick: Equatable {
    var value: Double
    var major: Bool
    var label: String?
}

/// An axis range and its ticks, for linear or logarithmic scales.
struct PlotAxis {
    let log: Bool
    /// Range in axis units: values for linear axes, log10(values) for log axes.
    let lo: Double, hi: Double
    let ticks: [PlotTick]

    init(values: [Double], log: Bool) {
        self.log = log
        if log {
            var a = 0.0, b = 1.0
            if let mn = values.min(), let mx = values.max() {
                a = Foundation.floor(Foundation.log10(mn))
                b = Foundation.ceil(Foundation.log10(mx))
                if b <= a { b = a + 1 }
            }
            lo = a
            hi = b
            ticks = PlotAxis.logTicks(fromDecade: Int(a), toDecade: Int(b))
        } else {
            var a = 0.0, b = 1.0
            if let mn = values.min(), let mx = values.max() {
                a = mn
                b = mx
                if b == a {
                    let pad = a == 0 ? 1 : abs(a) * 0.1
                    a -= pad
                    b += pad
                }
            }
            let step = PlotAxis.niceStep((b - a) / 6)  // 4 to 7 intervals
            lo = Foundation.floor(a / step + 1e-9) * step
            hi = Foundation.ceil(b / step - 1e-9) * step
            ticks = PlotAxis.linearTicks(lo: lo, hi: hi, step: step)
        }
    }

    /// Position of `v` in [0, 1] along the axis.
    func fraction(_ v: Double) -> Double {
        let u = log ? Foundation.log10(v) : v
        return hi > lo ? (u - lo) / (hi - lo) : 0.5
    }

    /// The 1-2-5 × 10^k step closest above `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
        let f = raw / p
        let m: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
        return m * p
    }

    static func linearTicks(lo: Double, hi: Double, step: Double) -> [PlotTick] {
        let n = Int(((hi - lo) / step).rounded())
        let decimals = max(0, Int(-Foundation.floor(Foundation.log10(step) + 1e-9)))
        let big = max(abs(lo), abs(hi))
        return (0...max(n, 0)).map { i in
            var v = lo + Double(i) * step
            if abs(v) < step * 1e-9 { v = 0 }  // no "-0" or 1e-17 labels
            let label: String
            if big >= 1e6 || big < 1e-4 {
                label = String(format: "%g", v)
            } else {
                label = String(format: "%.\(decimals)f", v)
            }
            return PlotTick(value: v, major: true, label: label)
        }
    }

    static func logTicks(fromDecade a: Int, toDecade b: Int) -> [PlotTick] {
        let decades = b - a
        let every = max(1, (decades + 9) / 10)  // at most about 10 labels
        var ticks: [PlotTick] = []
        for k in a...b {
            let v = Foundation.pow(10, Double(k))
            ticks.append(PlotTick(value: v, major: true, label: (k - a) % every == 0 ? decadeLabel(k) : nil))
            if k < b && decades <= 12 {
                for m in 2...9 { ticks.append(PlotTick(value: Double(m) * v, major: false, label: nil)) }
            }
        }
        return ticks
    }

    /// "0.001", "1", "1000", … for 10^−4…10^5; "1e6", "1e-5" beyond.
    static func decadeLabel(_ k: Int) -> String {
        if k >= 0 && k <= 5 { return "1" + String(repeating: "0", count: k) }
        if k < 0 && k >= -4 { return "0." + String(repeating: "0", count: -k - 1) + "1" }
        return "1e\(k)"
    }
}

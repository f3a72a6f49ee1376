import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import PESVIExperiments

/// Parses an SVG document with Foundation's XMLParser and keeps what the tests look at.
final class SVGScan: NSObject, XMLParserDelegate {
    struct Element { var name: String; var attributes: [String: String]; var text: String }
    var elements: [Element] = []
    private var open: [Int] = []
    var parseError: Error?

    static func parse(_ svg: String) -> SVGScan? {
        let scan = SVGScan()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = scan
        return parser.parse() && scan.parseError == nil ? scan : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(Element(name: name, attributes: attributes, text: ""))
        open.append(elements.count - 1)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }
    func parser(_ parser: XMLParser, parseErrorOccurred error: Error) { parseError = error }

    func all(_ name: String, class cls: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (cls == nil || $0.attributes["class"] == cls) }
    }
    /// Number of "x,y" pairs in a polyline's points attribute.
    static func pointCount(_ e: Element) -> Int {
        (e.attributes["points"] ?? "").split(separator: " ").count
    }
}

@Suite struct SVGPlotTests {
    /// A typical use: objective vs step on log axes, two methods of different lengths.
    static func curves() -> LinePlot {
        let steps = (1...3000).map(Double.init)
        let svi = steps.map { 1000 / $0.squareRoot() + 5 }
        let pe = (1...1500).map { 300 / Double($0) + 4 }
        return LinePlot(title: "Test objective", xLabel: "step", yLabel: "objective",
                        xLog: true, yLog: true,
                        series: [.init(name: "SVI", xs: steps, ys: svi),
                                 .init(name: "PE-SVI", xs: Array(steps[..<1500]), ys: pe, color: "red")])
    }

    @Test func parsesAsXMLWithOnePolylinePerSeries() throws {
        let scan = try #require(SVGScan.parse(Self.curves().svg()))
        #expect(scan.elements.first?.name == "svg")
        let lines = scan.all("polyline", class: "series")
        #expect(lines.count == 2)
        #expect(lines.map(SVGScan.pointCount) == [3000, 1500])
        #expect(lines.map { $0.attributes["data-name"] } == ["SVI", "PE-SVI"])
        #expect(lines[1].attributes["stroke"] == "red")
        #expect(scan.all("text", class: "title").first?.text == "Test objective")
        #expect(scan.all("text", class: "legend-entry").map(\.text) == ["SVI", "PE-SVI"])
    }

    @Test func logTicksAtDecadesWithMinorTicks() throws {
        let scan = try #require(SVGScan.parse(Self.curves().svg()))
        // x spans 1…3000 → decades 1 … 10000.
        #expect(scan.all("text", class: "xtick").map(\.text) == ["1", "10", "100", "1000", "10000"])
        // y spans about 4.2…1005 → 1 … 10000.
        #expect(scan.all("text", class: "ytick").map(\.text) == ["1", "10", "100", "1000", "10000"])
        // 8 minor ticks in each of the 4 decades, on each axis.
        #expect(scan.all("line", class: "minor").count == 2 * 4 * 8)
        #expect(scan.all("line", class: "major").count == 2 * 5)
    }

    @Test func decadeLabelsAreReadable() {
        #expect(PlotAxis.decadeLabel(0) == "1")
        #expect(PlotAxis.decadeLabel(3) == "1000")
        #expect(PlotAxis.decadeLabel(-2) == "0.01")
        #expect(PlotAxis.decadeLabel(7) == "1e7")
        #expect(PlotAxis.decadeLabel(-6) == "1e-6")
        // Many decades: at most about 10 labels, still at decades.
        let t = PlotAxis.logTicks(fromDecade: -10, toDecade: 20)
        let labels = t.compactMap(\.label)
        #expect(labels.count <= 11 && labels.count >= 5)
        #expect(t.filter(\.major).count == 31)
    }

    @Test func linearTicksAreNice() {
        let a = PlotAxis(values: [0.3, 9.7], log: false)
        #expect(a.ticks.map(\.value) == [0, 2, 4, 6, 8, 10])
        #expect(a.ticks.compactMap(\.label) == ["0", "2", "4", "6", "8", "10"])
        let b = PlotAxis(values: [-0.013, 0.041], log: false)
        // range 0.054 / 6 = 0.009 → step 0.01, range widened to multiples of it.
        #expect(b.ticks.compactMap(\.label) == ["-0.02", "-0.01", "0.00", "0.01", "0.02", "0.03", "0.04", "0.05"])
        #expect(PlotAxis(values: [-3, 1005], log: false).ticks.map(\.value) == [-200, 0, 200, 400, 600, 800, 1000, 1200])
        // Large and tiny magnitudes switch to %g labels.
        #expect(PlotAxis(values: [0, 3e6], log: false).ticks.compactMap(\.label).last == "3e+06")
        // A constant series still gets a non-empty range.
        let c = PlotAxis(values: [5, 5], log: false)
        #expect(c.lo < 5 && c.hi > 5)
        #expect(PlotAxis.niceStep(0.23) == 0.5 && PlotAxis.niceStep(1.7) == 2 && PlotAxis.niceStep(3000) == 5000)
    }

    @Test func skipsNonFiniteAndNonPositiveOnLogAxes() throws {
        let plot = LinePlot(title: "t", xLabel: "x", yLabel: "y", xLog: true, yLog: true, series: [
            .init(name: "a", xs: [0, 1, 2, 3, 4, 5, 6], ys: [1, .nan, -1, 0, .infinity, 2, 3]),
            .init(name: "b", xs: [1, 2, 3], ys: [1, 2]),  // unequal lengths: 2 pairs
        ])
        let scan = try #require(SVGScan.parse(plot.svg()))
        #expect(scan.all("polyline", class: "series").map(SVGScan.pointCount) == [2, 2])
        // The same data on linear axes keeps the zero and negative values.
        var lin = plot
        lin.xLog = false
        lin.yLog = false
        let scan2 = try #require(SVGScan.parse(lin.svg()))
        #expect(scan2.all("polyline", class: "series").map(SVGScan.pointCount) == [5, 2])
    }

    @Test func emptySeriesAndNoSeries() throws {
        let plot = LinePlot(title: "empty", xLabel: "x", yLabel: "y", xLog: true, yLog: false, series: [
            .init(name: "nothing", xs: [], ys: []),
            .init(name: "one", xs: [10], ys: [3]),
        ])
        let scan = try #require(SVGScan.parse(plot.svg()))
        #expect(scan.all("polyline", class: "series").map(SVGScan.pointCount) == [0, 1])
        #expect(scan.all("circle").count == 1)
        let bare = LinePlot(title: "", xLabel: "", yLabel: "", xLog: true, yLog: true)
        let scan2 = try #require(SVGScan.parse(bare.svg()))
        #expect(scan2.all("polyline").isEmpty)
        #expect(scan2.all("text", class: "no-data").count == 1)
        #expect(scan2.all("text", class: "xtick").map(\.text) == ["1", "10"])
    }

    @Test func textIsEscaped() throws {
        let nasty = #"a < b & "c" > 'd' </svg>"#
        let plot = LinePlot(title: nasty, xLabel: "x&y", yLabel: "<y>", series: [
            .init(name: nasty, xs: [1, 2], ys: [3, 4], color: #""/><script>"#),
        ])
        let svg = plot.svg()
        #expect(!svg.contains("<script>"))
        let scan = try #require(SVGScan.parse(svg))
        #expect(scan.all("text", class: "title").first?.text == nasty)
        #expect(scan.all("text", class: "xlabel").first?.text == "x&y")
        #expect(scan.all("text", class: "ylabel").first?.text == "<y>")
        #expect(scan.all("polyline").first?.attributes["data-name"] == nasty)
        #expect(scan.all("polyline").first?.attributes["stroke"] == #""/><script>"#)
        #expect(LinePlot.escape("x\u{1}y") == "x y")
    }

    @Test func pointsStayInsideThePlotFrame() throws {
        let scan = try #require(SVGScan.parse(Self.curves().svg()))
        let frame = try #require(scan.all("rect", class: "frame").first)
        let fx = Double(frame.attributes["x"]!)!, fy = Double(frame.attributes["y"]!)!
        let fw = Double(frame.attributes["width"]!)!, fh = Double(frame.attributes["height"]!)!
        for line in scan.all("polyline", class: "series") {
            for pair in line.attributes["points"]!.split(separator: " ") {
                let c = pair.split(separator: ",").map { Double($0)! }
                #expect(c[0] >= fx - 0.01 && c[0] <= fx + fw + 0.01)
                #expect(c[1] >= fy - 0.01 && c[1] <= fy + fh + 0.01)
            }
        }
    }
}

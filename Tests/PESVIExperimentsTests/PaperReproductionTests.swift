import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PESVIData
import PESVIModels
@testable import PESVIExperiments

/// The whole `reproduce` path on a tiny data set: tables, JSON and plots written and well formed.
@Suite struct PaperReproductionTests {
    @Test func tinyReproductionWritesTablesJSONAndPlots() throws {
        let data = try SyntheticDataGenerator(n: 240, dim: 10, seed: 3).generate()
        var o = ReproductionOptions.quick()
        o.latents = [2, 3]
        o.architectures = [.arch1, .arch2]
        o.vaeRates = [1e-2]
        o.decoderRates = [1e-2]
        o.latentRates = [1e-1]
        o.maxEpochs = 8; o.patience = 4; o.encoderEpochs = 8
        o.paceCandidates = [0.5, 0.05]
        o.sviRule = .plateau(window: 10, tolerance: 1e-2, maxSteps: 200)
        let cells = try PaperReproduction.run(data: data, dataset: "tiny", options: o)
        #expect(cells.count == 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-repro-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try PaperReproduction.write(cells, dataset: "tiny", options: o, totalSeconds: 1.5, to: dir.path)

        let md = try String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)
        #expect(md.contains("QUICK protocol"))
        for header in ["## Arch1", "## Arch2", "## Steps", "## Chosen hyperparameters", "| Model \\ |z| | 2 | 3 |"] {
            #expect(md.contains(header), "results.md lacks \(header)")
        }
        for row in ["| VAE |", "| SVI |", "| PE-SVI-0 |", "| PE-SVI-25 |"] {
            #expect(md.components(separatedBy: row).count - 1 == 2, "\(row) should appear once per architecture")
        }

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("results.json"))) as! [[String: Any]]
        #expect(json.count == 4)
        for cell in json {
            #expect(cell["dataset"] as? String == "tiny")
            #expect([2, 3].contains(cell["z"] as? Int ?? 0))
            let methods = cell["methods"] as! [String: [String: Any]]
            for m in ["VAE", "SVI", "PE-SVI-0", "PE-SVI-25", "PE-SVI-auto"] { #expect(methods[m] != nil, "missing \(m)") }
            #expect(methods["VAE"]!["steps"] == nil)
            #expect(methods["SVI"]!.keys.contains("steps"))   // a number or null
            for (_, v) in methods {
                let r = v["reconstruction"] as? Double ?? .nan
                #expect(r.isFinite)
            }
        }
        let bytes = try Data(contentsOf: dir.appendingPathComponent("results.json"))
        let decoded: [ComparisonReport] = try JSONDecoder().decode([ComparisonReport].self, from: bytes)
        #expect(decoded.count == 4)

        for cell in cells {
            let url = dir.appendingPathComponent(PaperReproduction.plotName(cell))
            let svg = try Data(contentsOf: url)
            let parser = XMLParser(data: svg)
            #expect(parser.parse(), "\(url.lastPathComponent) is not well-formed XML")
            #expect(String(decoding: svg, as: UTF8.self).contains("SVI"))
        }
    }
}

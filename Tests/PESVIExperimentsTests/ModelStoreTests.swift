import Foundation
import Testing
import PESVIData
import PESVIModels
@testable import PESVIExperiments

/// A unique directory under the temporary directory (created).
func temporaryDirectory() throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-experiments-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

/// Bit patterns, so −0.0 ≠ 0.0 and NaN payloads count.
func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

/// A tiny model trained in-process: 120×10 synthetic rows, |z| = 3, a few epochs per phase.
func tinyModel(objective: Objective = .reconstruction, architecture: Architecture = .arch2, vae: Bool = true,
               keepPosteriors: Bool = true, seed: UInt64 = 1) throws -> PESVIModel {
    let data = try SyntheticDataGenerator(n: 120, dim: 10, seed: seed).generate()
    var o = PipelineOptions()
    o.latent = 3
    o.architecture = architecture
    o.objective = objective
    o.phase1.epochs = 3; o.phase1.batchSize = 32
    o.phase2.epochs = 3; o.phase2.batchSize = 32
    if vae { var v = VAETrainingConfiguration(); v.epochs = 3; v.batchSize = 32; o.vae = v }
    o.keepPosteriors = keepPosteriors
    o.seed = seed
    o.threads = 1
    o.dataSource = "synthetic:test"
    return try TrainingPipeline.train(data, options: o).0
}

@Suite struct ModelStoreTests {
    static let variants: [(String, Objective, Architecture, Bool, Bool)] = [
        ("reconstruction arch2 + VAE + posteriors", .reconstruction, .arch2, true, true),
        ("ELBO learned variance arch3 + VAE", .elbo(beta: 0.5, likelihood: .learnedVariance), .arch3, true, false),
        ("ELBO fixed σ arch1, no VAE", .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)), .arch1, false, false),
        ("custom widths", .reconstruction, .custom(hidden: [5, 7]), false, true),
    ]

    /// PE-SVI-GN's Krylov preconditioner is stored with the model and read back bit for bit; a
    /// file of the wrong shape or with a non-finite value is refused with its path.
    @Test func krylovPreconditionerRoundTripsAndIsValidated() throws {
        let model = try tinyModel(vae: false)
        #expect(model.krylovPreconditioner == nil, "|z| = 3 is outside the default rule")
        model.krylovPreconditioner = [2, 0.5, -0.25, 0.5, 3, 0.125, -0.25, 0.125, 1e-3]
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try ModelStore.save(model, to: dir.path)
        #expect(try bits(#require(ModelStore.load(from: dir.path).krylovPreconditioner)) == bits(model.krylovPreconditioner!))
        try ModelStore.savePreconditioner([1, 2, 3, 4], latent: 2, to: dir.path)
        #expect(throws: ModelStoreError.self) { try ModelStore.load(from: dir.path) }
        // A NaN written into the last value's bytes (NPY.write refuses non-finite values).
        try ModelStore.savePreconditioner([1, 0, 0, 0, 1, 0, 0, 0, 1], latent: 3, to: dir.path)
        let file = dir.appendingPathComponent("krylov-preconditioner.npy")
        var bytes = try Data(contentsOf: file)
        bytes.replaceSubrange((bytes.count - 4)..<bytes.count, with: [0x00, 0x00, 0xC0, 0x7F])
        try bytes.write(to: file)
        do {
            _ = try ModelStore.load(from: dir.path)
            Issue.record("a non-finite preconditioner was accepted")
        } catch {
            #expect("\(error)".contains("krylov-preconditioner.npy"), "\(error)")
        }
    }

    /// Training forms the preconditioner where `pesvi` uses one by default (d ≥ |z|,
    /// 32 ≤ |z| < 64): the one ``ComparisonOptions/formKrylovPreconditioner(for:threads:)`` gives.
    @Test func trainingFormsTheKrylovPreconditionerWhereTheRuleApplies() throws {
        let data = try SyntheticDataGenerator(n: 120, dim: 40, seed: 3).generate()
        var o = PipelineOptions()
        o.latent = 32
        o.architecture = .arch2
        o.phase1.epochs = 2; o.phase1.batchSize = 32
        o.phase2.epochs = 2; o.phase2.batchSize = 32
        o.seed = 3
        o.threads = 1
        o.dataSource = "synthetic:test"
        let model = try TrainingPipeline.train(data, options: o).0
        let c = try #require(model.krylovPreconditioner)
        #expect(c.count == 32 * 32 && c == ComparisonOptions.formKrylovPreconditioner(for: model, threads: 1))
        // 12 validation rows, under the row cap: all of them.
        let rows = try #require(model.validationData?.rows)
        #expect(rows == 12 && ComparisonOptions.krylovPreconditionerRows(for: model) == rows)
    }

    @Test(arguments: 0..<variants.count)
    func saveLoadIsBitIdentical(variant: Int) throws {
        let (label, objective, architecture, vae, keep) = Self.variants[variant]
        let model = try tinyModel(objective: objective, architecture: architecture, vae: vae, keepPosteriors: keep)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        try ModelStore.save(model, to: a.path)
        let loaded = try ModelStore.load(from: a.path)

        #expect(loaded.configuration == model.configuration, "\(label): configuration differs")
        #expect(loaded.decoder.network.widths == model.decoder.network.widths)
        #expect(bits(loaded.decoder.network.parameters.array) == bits(model.decoder.network.parameters.array), "\(label): decoder")
        #expect(loaded.decoder.objective == model.decoder.objective)
        #expect(loaded.decoder.logNoiseVariance.map { bits($0.array) } == model.decoder.logNoiseVariance.map { bits($0.array) })
        #expect(objective.usesLearnedVariance == (loaded.decoder.logNoiseVariance != nil))
        #expect(loaded.pseudoEncoder.network.widths == model.pseudoEncoder.network.widths)
        #expect(bits(loaded.pseudoEncoder.network.parameters.array) == bits(model.pseudoEncoder.network.parameters.array), "\(label): encoder")
        #expect((loaded.vae == nil) == !vae)
        if let v = model.vae, let w = loaded.vae {
            #expect(bits(w.encoder.network.parameters.array) == bits(v.encoder.network.parameters.array), "\(label): VAE encoder")
            #expect(bits(w.decoder.network.parameters.array) == bits(v.decoder.network.parameters.array), "\(label): VAE decoder")
            #expect(w.decoder.logNoiseVariance.map { bits($0.array) } == v.decoder.logNoiseVariance.map { bits($0.array) })
        }
        #expect((loaded.trainPosteriors == nil) == !keep)
        if let p = model.trainPosteriors, let q = loaded.trainPosteriors {
            #expect(q.rows == p.rows && q.latent == p.latent)
            #expect(bits(q.mu.array) == bits(p.mu.array), "\(label): posterior μ")
            #expect(bits(q.logVariance.array) == bits(p.logVariance.array), "\(label): posterior log σ²")
        }
        #expect(loaded.validationData.map { bits($0.values) } == model.validationData.map { bits($0.values) })
        #expect(loaded.testData.map { bits($0.values) } == model.testData.map { bits($0.values) })

        // Re-saving what was loaded writes the same bytes.
        try ModelStore.save(loaded, to: b.path)
        for file in ["model.safetensors", "config.json", "validation.npy", "test.npy"] {
            let x = try Data(contentsOf: a.appendingPathComponent(file)), y = try Data(contentsOf: b.appendingPathComponent(file))
            #expect(x == y, "\(label): \(file) differs after load and re-save")
        }
        // And the loaded model computes what the original computes.
        let x = try model.prepare(model.testData!, name: "test")
        #expect(bits(loaded.pseudoEncoder.encode(x).mu) == bits(model.pseudoEncoder.encode(x).mu))
    }

    /// The automatic pace's step rule is stored beside the rate and read back; a config.json
    /// from before it existed (no `autoStepRule`) reads as Adam's; a stored Cauchy step on a
    /// model whose objective has no Cauchy step, or a non-positive rate, is refused by name.
    @Test func automaticStepRuleRoundTripsAndIsChecked() throws {
        let model = try tinyModel(vae: false, keepPosteriors: false)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        model.configuration.autoPace = 1
        model.configuration.autoStepRule = .cauchy
        try ModelStore.save(model, to: dir.path)
        let configURL = dir.appendingPathComponent("config.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        #expect(object["autoStepRule"] as? String == "cauchy")
        let loaded = try ModelStore.load(from: dir.path)
        #expect(loaded.configuration.autoStepRule == .cauchy)
        #expect(loaded.configuration.automaticRefinement(GuardedRefinementConfiguration(learningRate: 0.1))?.stepRule == .cauchy)
        func rewrite(_ change: (inout [String: Any]) -> Void) throws {
            change(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: configURL)
        }
        try rewrite { $0["autoStepRule"] = "krylov" }
        #expect(try ModelStore.load(from: dir.path).configuration.automaticRefinement(GuardedRefinementConfiguration(learningRate: 0.1))?.stepRule == .krylov)
        try rewrite { $0["autoStepRule"] = nil }
        let older = try ModelStore.load(from: dir.path)
        #expect(older.configuration.autoStepRule == nil && older.configuration.autoPace == 1)
        #expect(older.configuration.automaticRefinement(GuardedRefinementConfiguration(learningRate: 0.1))?.stepRule == .adam)
        try rewrite { $0["autoPace"] = -1 }
        #expect(throws: ModelStoreError.invalid("\(configURL.path): autoPace must be a positive number, got -1.0")) { try ModelStore.load(from: dir.path) }

        let elbo = try tinyModel(objective: .elbo(beta: 1), vae: false, keepPosteriors: false)
        elbo.configuration.autoPace = 1
        elbo.configuration.autoStepRule = .cauchy
        let e = dir.appendingPathComponent("elbo")
        try ModelStore.save(elbo, to: e.path)
        do {
            _ = try ModelStore.load(from: e.path)
            Issue.record("loaded a Cauchy automatic pace on an ELBO model")
        } catch let error as ModelStoreError {
            #expect(error.description.contains("autoStepRule 'cauchy' needs the reconstruction objective"), "\(error)")
        }
    }

    /// Parses `model.safetensors` by hand, as Python's `safetensors` would: an 8-byte
    /// little-endian header length, a JSON header, F32 tensors tiling the data buffer.
    @Test func safetensorsHeaderIsWhatPythonReads() throws {
        let model = try tinyModel(objective: .elbo(beta: 1, likelihood: .learnedVariance), vae: true, keepPosteriors: true)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try ModelStore.save(model, to: dir.path)
        let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("model.safetensors")))
        try #require(bytes.count >= 8)
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        try #require(n > 0 && 8 + n <= bytes.count)
        #expect((8 + n) % 8 == 0, "data buffer starts 8-byte aligned")
        let headerBytes = Array(bytes[8..<(8 + n)])
        #expect(headerBytes.first == UInt8(ascii: "{"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["format"] == "pesvi")
        #expect(metadata["format_version"] == "\(ModelConfiguration.currentFormatVersion)")

        // The names documented in ModelStore.swift, with the shapes the configuration implies.
        let c = model.configuration
        let (z, d, h) = (c.latent, c.dataWidth, min(2 * c.latent, 128))
        var expected: [String: [Int]] = [
            "decoder.layers.0.weight": [z, h], "decoder.layers.0.bias": [h],
            "decoder.layers.1.weight": [h, d], "decoder.layers.1.bias": [d],
            "decoder.log_noise_variance": [d],
            "pseudo_encoder.layers.0.weight": [d, h], "pseudo_encoder.layers.0.bias": [h],
            "pseudo_encoder.layers.1.weight": [h, 2 * z], "pseudo_encoder.layers.1.bias": [2 * z],
            "posterior.mu": [model.trainPosteriors!.rows, z], "posterior.log_variance": [model.trainPosteriors!.rows, z],
        ]
        for (k, v) in expected where k.hasPrefix("decoder.") || k.hasPrefix("pseudo_encoder.") {
            expected["vae." + k.replacingOccurrences(of: "pseudo_encoder", with: "encoder")] = v
        }
        let tensors = header.filter { $0.key != "__metadata__" }
        #expect(Set(tensors.keys) == Set(expected.keys))

        struct Entry { var name: String; var begin: Int; var end: Int }
        var entries: [Entry] = []
        for (name, value) in tensors {
            let e = try #require(value as? [String: Any], "\(name)")
            #expect(e["dtype"] as? String == "F32", "\(name) dtype")
            let shape = try #require(e["shape"] as? [Int], "\(name) shape")
            #expect(shape == expected[name], "\(name) shape \(shape)")
            let offsets = try #require(e["data_offsets"] as? [Int], "\(name) data_offsets")
            try #require(offsets.count == 2)
            #expect(offsets[1] - offsets[0] == 4 * shape.reduce(1, *), "\(name) span")
            entries.append(Entry(name: name, begin: offsets[0], end: offsets[1]))
        }
        // Contiguous, in name order, exactly covering the buffer.
        entries.sort { $0.begin < $1.begin }
        var position = 0
        for e in entries {
            #expect(e.begin == position, "\(e.name) starts at \(e.begin), expected \(position)")
            position = e.end
        }
        #expect(8 + n + position == bytes.count, "no trailing bytes")
        #expect(entries.map(\.name) == entries.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })

        // The values are the model's, little-endian.
        func floats(_ name: String) -> [Float] {
            let e = entries.first { $0.name == name }!
            return stride(from: 8 + n + e.begin, to: 8 + n + e.end, by: 4).map { i in
                Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        }
        let net = model.decoder.network, p = net.parameters.array
        let w0 = Array(p[net.weightOffsets[0]..<(net.weightOffsets[0] + z * h)])
        #expect(bits(floats("decoder.layers.0.weight")) == bits(w0))
        #expect(bits(floats("posterior.mu")) == bits(model.trainPosteriors!.mu.array))
        #expect(bits(floats("decoder.log_noise_variance")) == bits(model.decoder.logNoiseVariance!.array))
    }

    @Test func configJSONIsStableAndReadable() throws {
        let model = try tinyModel(vae: false, keepPosteriors: false)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try ModelStore.save(model, to: dir.path)
        let json = try Data(contentsOf: dir.appendingPathComponent("config.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["latent"] as? Int == 3)
        #expect(object["dataWidth"] as? Int == 10)
        #expect(object["formatVersion"] as? Int == ModelConfiguration.currentFormatVersion)
        #expect(object["dataSource"] as? String == "synthetic:test")
        // No VAE and no posteriors: no such tensors.
        let file = try Safetensors.read(dir.appendingPathComponent("model.safetensors"))
        #expect(!file.tensors.keys.contains { $0.hasPrefix("vae.") || $0.hasPrefix("posterior.") })
    }

    @Test func loadRefusesAMissingTensor() throws {
        let model = try tinyModel(vae: true, keepPosteriors: false)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try ModelStore.save(model, to: dir.path)
        let url = dir.appendingPathComponent("model.safetensors")
        var file = try Safetensors.read(url)
        file.tensors["vae.encoder.layers.1.bias"] = nil
        try Safetensors.write(file, to: url)
        #expect(throws: ModelStoreError.invalid("\(url.path): tensor vae.encoder.layers.1.bias is missing")) {
            try ModelStore.load(from: dir.path)
        }
    }

    @Test func loadRefusesAnUnexpectedTensor() throws {
        let model = try tinyModel(vae: false, keepPosteriors: false)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try ModelStore.save(model, to: dir.path)
        let url = dir.appendingPathComponent("model.safetensors")
        var file = try Safetensors.read(url)
        file.tensors["decoder.layers.2.weight"] = try FloatTensor(shape: [1], values: [0])
        try Safetensors.write(file, to: url)
        do {
            _ = try ModelStore.load(from: dir.path)
            Issue.record("loaded a checkpoint with an extra layer")
        } catch let e as ModelStoreError {
            #expect(e.description.contains("decoder.layers.2.weight"))
        }
    }
}

/// `DataFiles.write` then `DataFiles.read` returns the same bits, for .npy and .csv.
@Suite struct DataFilesRoundTripTests {
    /// Awkward floats: subnormals, ±0, extremes, values needing 9 significant digits.
    static let awkward: [Float] = [
        0, -0.0, 1, -1, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .ulpOfOne, 1 + .ulpOfOne, Float(bitPattern: 0x3EAA_AAAB), 16_777_215, 0.1, 1e-30, 3.4028e38, 123456.789,
    ]

    @Test(arguments: ["npy", "csv"])
    func roundTripIsBitIdentical(ext: String) throws {
        var values = Self.awkward
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<(48 * 7 - values.count) { values.append(Float(bitPattern: UInt32.random(in: 0...0x7F7F_FFFF, using: &rng)) * (Bool.random() ? 1 : -1)) }
        let names = ext == "csv" ? (0..<7).map { "c\($0)" } : nil
        let m = try DataMatrix(rows: 48, cols: 7, values: values, columnNames: names)
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.\(ext)").path
        try DataFiles.write(m, to: path)
        let r = try DataFiles.read(path)
        #expect(r.rows == m.rows && r.cols == m.cols)
        #expect(bits(r.values) == bits(m.values))
        #expect(r.columnNames == names)
        // Writing again gives the same bytes.
        let again = dir.appendingPathComponent("again.\(ext)").path
        try DataFiles.write(r, to: again)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: again)))
    }

    @Test func csvWithoutNamesRoundTrips() throws {
        let m = try DataMatrix(rows: 2, cols: 3, values: [1, 2.5, -3e-7, 4, 0, 6])
        let dir = try temporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.csv").path
        try DataFiles.write(m, to: path)
        #expect(try DataFiles.read(path) == m)
    }

    @Test func unknownExtensionsAreRefused() throws {
        let m = try DataMatrix(rows: 1, cols: 1, values: [1])
        #expect(throws: DataError.self) { try DataFiles.write(m, to: "/tmp/pesvi-should-not-exist.bin") }
        #expect(throws: DataError.self) { try DataFiles.read("/tmp/pesvi-should-not-exist.bin") }
    }
}

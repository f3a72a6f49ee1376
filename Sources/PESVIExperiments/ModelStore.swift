import Foundation
import PESVIData
import PESVIModels

/// Errors in reading or writing a model directory; each description is one line.
public enum ModelStoreError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .missing(let m): return m
        case .invalid(let m): return m
        }
    }
}

/// A trained PE-SVI model: the decoder, the pseudo-encoder, the VAE baseline if trained, the
/// training posteriors if kept, and the configuration (scaling, pace, hyperparameters).
public final class PESVIModel: @unchecked Sendable {
    public var configuration: ModelConfiguration
    public let decoder: GaussianDecoder
    public let pseudoEncoder: GaussianEncoder
    public let vae: (encoder: GaussianEncoder, decoder: GaussianDecoder)?
    public let trainPosteriors: PosteriorTable?
    /// The held-out rows, raw (before standardization), kept with the model so `evaluate`
    /// and pace selection work from the model directory alone.
    public let validationData: DataMatrix?
    public let testData: DataMatrix?
    /// PE-SVI-GN's Krylov preconditioner for this model (|z| × |z|, row-major;
    /// ``GaussNewtonRefinement/curvaturePreconditioner(decoder:points:starts:ridge:rows:)``
    /// from the pseudo-encoder's starts of the validation rows), once formed: a property of the
    /// model and its validation rows, stored beside them (`krylov-preconditioner.npy`) so that it
    /// is formed once, as the automatic pace is found once. nil until formed.
    public var krylovPreconditioner: [Float]? = nil

    public init(configuration: ModelConfiguration, decoder: GaussianDecoder, pseudoEncoder: GaussianEncoder,
                vae: (encoder: GaussianEncoder, decoder: GaussianDecoder)?, trainPosteriors: PosteriorTable?,
                validationData: DataMatrix?, testData: DataMatrix?) {
        self.configuration = configuration
        self.decoder = decoder
        self.pseudoEncoder = pseudoEncoder
        self.vae = vae
        self.trainPosteriors = trainPosteriors
        self.validationData = validationData
        self.testData = testData
    }

    /// Standardizes raw rows with the model's training statistics, checking the width.
    public func prepare(_ raw: DataMatrix, name: String) throws -> Dataset {
        guard raw.cols == configuration.dataWidth else {
            throw ModelStoreError.invalid("\(name) has \(raw.cols) columns, but the model was trained on \(configuration.dataWidth)")
        }
        let m = try configuration.standardizer.map { try $0.transform(raw) } ?? raw
        return DataFiles.dataset(m)
    }
}

/// Reads and writes model directories:
/// - `model.safetensors`: F32 tensors `decoder.layers.{l}.weight` [in, out] and `.bias` [out],
///   `decoder.log_noise_variance` [d] (learned likelihood), `pseudo_encoder.layers.{l}.*`,
///   `vae.encoder.layers.{l}.*`, `vae.decoder.layers.{l}.*` (and `vae.decoder.log_noise_variance`),
///   `posterior.mu` and `posterior.log_variance` [N, |z|] when kept. Loads in Python with
///   `safetensors.numpy.load_file`.
/// - `config.json`: the ``ModelConfiguration``.
/// - `validation.npy`, `test.npy`: the held-out raw rows.
/// - `krylov-preconditioner.npy` (optional): PE-SVI-GN's Krylov preconditioner, |z| × |z|
///   (``PESVIModel/krylovPreconditioner``).
/// Every file is written atomically (temp file, then rename). Loading checks the header,
/// every tensor's presence and shape, and the configuration, and refuses anything else.
public enum ModelStore {
    static let weightsFile = "model.safetensors", configFile = "config.json"
    /// The Krylov preconditioner's file in a model directory (``PESVIModel/krylovPreconditioner``).
    public static let preconditionerFile = "krylov-preconditioner.npy"

    static func networkTensors(_ net: DenseNetwork, prefix: String) throws -> [String: FloatTensor] {
        var out: [String: FloatTensor] = [:]
        let p = net.parameters.array
        for l in 0..<net.layerCount {
            let nIn = net.widths[l], nOut = net.widths[l + 1]
            let w = net.weightOffsets[l], b = net.biasOffsets[l]
            out["\(prefix).layers.\(l).weight"] = try FloatTensor(shape: [nIn, nOut], values: Array(p[w..<(w + nIn * nOut)]))
            out["\(prefix).layers.\(l).bias"] = try FloatTensor(shape: [nOut], values: Array(p[b..<(b + nOut)]))
        }
        return out
    }

    static func network(_ tensors: [String: FloatTensor], prefix: String, widths: [Int], file: String) throws -> DenseNetwork {
        var values: [Float] = []
        for l in 0..<(widths.count - 1) {
            for (suffix, shape) in [("weight", [widths[l], widths[l + 1]]), ("bias", [widths[l + 1]])] {
                let name = "\(prefix).layers.\(l).\(suffix)"
                guard let t = tensors[name] else { throw ModelStoreError.invalid("\(file): tensor \(name) is missing") }
                guard t.shape == shape else {
                    throw ModelStoreError.invalid("\(file): tensor \(name) has shape \(t.shape), the configuration needs \(shape)")
                }
                values += t.values
            }
        }
        var expected = Set<String>()
        for l in 0..<(widths.count - 1) { expected.insert("\(prefix).layers.\(l).weight"); expected.insert("\(prefix).layers.\(l).bias") }
        let extra = tensors.keys.filter { $0.hasPrefix(prefix + ".layers.") && !expected.contains($0) }
        if let e = extra.sorted().first { throw ModelStoreError.invalid("\(file): unexpected tensor \(e) for widths \(widths)") }
        return DenseNetwork(widths: widths, parameters: values)
    }

    /// Writes `model` to the directory `path` (created if needed).
    public static func save(_ model: PESVIModel, to path: String) throws {
        let dir = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.invalid("\(path): cannot create the model directory: \(error.localizedDescription)")
        }
        var tensors = try networkTensors(model.decoder.network, prefix: "decoder")
        if let lv = model.decoder.logNoiseVariance { tensors["decoder.log_noise_variance"] = try FloatTensor(shape: [lv.count], values: lv.array) }
        tensors.merge(try networkTensors(model.pseudoEncoder.network, prefix: "pseudo_encoder")) { a, _ in a }
        if let vae = model.vae {
            tensors.merge(try networkTensors(vae.encoder.network, prefix: "vae.encoder")) { a, _ in a }
            tensors.merge(try networkTensors(vae.decoder.network, prefix: "vae.decoder")) { a, _ in a }
            if let lv = vae.decoder.logNoiseVariance { tensors["vae.decoder.log_noise_variance"] = try FloatTensor(shape: [lv.count], values: lv.array) }
        }
        if let t = model.trainPosteriors {
            tensors["posterior.mu"] = try FloatTensor(shape: [t.rows, t.latent], values: t.mu.array)
            tensors["posterior.log_variance"] = try FloatTensor(shape: [t.rows, t.latent], values: t.logVariance.array)
        }
        try Safetensors.write(tensors: tensors, metadata: ["format": "pesvi", "format_version": "\(ModelConfiguration.currentFormatVersion)"],
                              to: dir.appendingPathComponent(weightsFile))
        try saveConfiguration(model.configuration, to: path)
        if let v = model.validationData { try NPY.write(v, to: dir.appendingPathComponent("validation.npy")) }
        if let t = model.testData { try NPY.write(t, to: dir.appendingPathComponent("test.npy")) }
        if let c = model.krylovPreconditioner { try savePreconditioner(c, latent: model.configuration.latent, to: path) }
    }

    /// Writes only PE-SVI-GN's Krylov preconditioner (|z| × |z|) into an existing model
    /// directory, atomically (`krylov-preconditioner.npy`).
    public static func savePreconditioner(_ c: [Float], latent: Int, to path: String) throws {
        try NPY.write(try DataMatrix(rows: latent, cols: latent, values: c), to: URL(fileURLWithPath: path).appendingPathComponent(preconditionerFile))
    }

    /// Rewrites only `config.json` of an existing model directory, atomically.
    public static func saveConfiguration(_ configuration: ModelConfiguration, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(configuration)
        try AtomicFile.write(json, to: URL(fileURLWithPath: path).appendingPathComponent(configFile))
    }

    /// Reads a model directory written by ``save(_:to:)``, validating everything.
    public static func load(from path: String) throws -> PESVIModel {
        let dir = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelStoreError.missing("\(path): no such model directory")
        }
        let configURL = dir.appendingPathComponent(configFile)
        guard let json = FileManager.default.contents(atPath: configURL.path) else {
            throw ModelStoreError.missing("\(configURL.path): missing (not a PESVI model directory?)")
        }
        let config: ModelConfiguration
        do {
            config = try JSONDecoder().decode(ModelConfiguration.self, from: json)
        } catch {
            throw ModelStoreError.invalid("\(configURL.path): not a valid PESVI configuration: \(describe(error))")
        }
        guard config.formatVersion == ModelConfiguration.currentFormatVersion else {
            throw ModelStoreError.invalid("\(configURL.path): format version \(config.formatVersion), this pesvi reads \(ModelConfiguration.currentFormatVersion)")
        }
        guard config.latent > 0, config.dataWidth > 0 else {
            throw ModelStoreError.invalid("\(configURL.path): latent size and data width must be positive")
        }
        // Rates that would make test-time inference climb instead of descend (or stand still).
        guard config.sviLearningRate > 0, config.sviLearningRate.isFinite else {
            throw ModelStoreError.invalid("\(configURL.path): sviLearningRate must be a positive number, got \(config.sviLearningRate)")
        }
        if let pace = config.pace {
            guard pace.learningRate > 0, pace.learningRate.isFinite, pace.steps >= 0 else {
                throw ModelStoreError.invalid("\(configURL.path): pace must have a positive learningRate and non-negative steps, got \(pace.learningRate) for \(pace.steps) steps")
            }
        }
        if let auto = config.autoPace, !(auto > 0 && auto.isFinite) {
            throw ModelStoreError.invalid("\(configURL.path): autoPace must be a positive number, got \(auto)")
        }
        if let rule = config.autoStepRule, rule.usesGaussNewtonModel, config.objective.kind != .reconstruction {
            throw ModelStoreError.invalid("\(configURL.path): autoStepRule '\(rule.rawValue)' needs the reconstruction objective, the model uses \(config.objective.kind)")
        }
        if let choice = config.gaussNewtonSchedule {
            guard config.decoderWidths.count > 2, config.objective.kind == .reconstruction else {
                throw ModelStoreError.invalid("\(configURL.path): gaussNewtonSchedule is for a ReLU decoder with the reconstruction objective")
            }
            guard choice.target.isFinite, choice.target >= 0 else {
                throw ModelStoreError.invalid("\(configURL.path): gaussNewtonSchedule's target must be a non-negative number, got \(choice.target)")
            }
        }
        let weightsURL = dir.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw ModelStoreError.missing("\(weightsURL.path): missing")
        }
        let file = try Safetensors.read(weightsURL)
        let t = file.tensors, name = weightsURL.path
        func noise(_ key: String, _ objective: Objective) throws -> [Float]? {
            guard objective.usesLearnedVariance else { return nil }
            guard let lv = t[key] else { throw ModelStoreError.invalid("\(name): tensor \(key) is missing") }
            guard lv.shape == [config.dataWidth] else { throw ModelStoreError.invalid("\(name): tensor \(key) has shape \(lv.shape), needs [\(config.dataWidth)]") }
            return lv.values
        }
        let decoder = GaussianDecoder(network: try network(t, prefix: "decoder", widths: config.decoderWidths, file: name),
                                      objective: config.objective, logNoiseVariance: try noise("decoder.log_noise_variance", config.objective))
        let encoder = GaussianEncoder(network: try network(t, prefix: "pseudo_encoder", widths: config.encoderWidths, file: name))
        var vae: (GaussianEncoder, GaussianDecoder)? = nil
        if config.vae != nil {
            let e = GaussianEncoder(network: try network(t, prefix: "vae.encoder", widths: config.encoderWidths, file: name))
            let d = GaussianDecoder(network: try network(t, prefix: "vae.decoder", widths: config.decoderWidths, file: name),
                                    objective: config.objective, logNoiseVariance: try noise("vae.decoder.log_noise_variance", config.objective))
            vae = (e, d)
        }
        var posteriors: PosteriorTable? = nil
        if let mu = t["posterior.mu"], let lv = t["posterior.log_variance"] {
            guard mu.shape.count == 2, mu.shape[1] == config.latent, lv.shape == mu.shape else {
                throw ModelStoreError.invalid("\(name): posterior tensors have shapes \(mu.shape) and \(lv.shape), need [N, \(config.latent)]")
            }
            posteriors = PosteriorTable(mu: mu.values, logVariance: lv.values, latent: config.latent,
                                        adam: AdamConfiguration(learningRate: config.phase1.latentLearningRate))
        }
        func optionalNPY(_ file: String) throws -> DataMatrix? {
            let u = dir.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: u.path) else { return nil }
            let m = try NPY.read(u)
            guard m.cols == config.dataWidth else {
                throw ModelStoreError.invalid("\(u.path) has \(m.cols) columns, the model's data width is \(config.dataWidth)")
            }
            return m
        }
        let model = PESVIModel(configuration: config, decoder: decoder, pseudoEncoder: encoder, vae: vae, trainPosteriors: posteriors,
                               validationData: try optionalNPY("validation.npy"), testData: try optionalNPY("test.npy"))
        let pu = dir.appendingPathComponent(preconditionerFile)
        if FileManager.default.fileExists(atPath: pu.path) {
            let c = try NPY.read(pu), L = config.latent
            guard c.rows == L, c.cols == L else {
                throw ModelStoreError.invalid("\(pu.path) is \(c.rows) × \(c.cols), the model's latent needs \(L) × \(L)")
            }
            guard c.values.allSatisfy(\.isFinite) else { throw ModelStoreError.invalid("\(pu.path) holds non-finite values") }
            model.krylovPreconditioner = c.values
        }
        return model
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "bad value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        default: return "\(error)"
        }
    }
}

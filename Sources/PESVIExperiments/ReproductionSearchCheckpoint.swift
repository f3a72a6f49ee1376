import Foundation
import PESVIData
import PESVIModels
import PESVINumerics

/// A cell's hyperparameter search in progress (`OUT/cells/z64-arch2.search.safetensors`), so an
/// interrupted `reproduce --resume` continues a cell where it stopped instead of from its
/// first configuration. Under the full protocol one cell trains 12 SVI and 12 VAE
/// configurations of up to 3,000 epochs each, hours of work at |z| = 128; a cell that is
/// restarted from scratch after every interruption may never finish.
///
/// After every trained configuration the file is rewritten (atomically) with the journal of
/// the configurations finished so far (rates, epochs, validation objective, seconds) and the
/// trained state of the best SVI and the best VAE configuration so far: the decoder's
/// parameters (and learned noise variances) with the training posteriors (μᵢ, log σ²ᵢ) for
/// SVI, encoder and decoder for the VAE. Resuming skips the journaled configurations and
/// compares the rest with the journaled best, in grid order and by the same strict test, so
/// the same configurations win; the winners are rebuilt from the stored floats, bit for bit.
/// The file is removed when the cell is finished and saved.
///
/// Layout: safetensors with the journal as JSON in the metadata key `journal`, and tensors
/// `svi.decoder`, `svi.noise`, `svi.mu`, `svi.logvar`, `vae.encoder`, `vae.decoder`,
/// `vae.noise` (each present only when it exists).
struct SearchCheckpoint: Equatable {
    struct SVIRun: Codable, Equatable {
        var decoderRate: Float
        var latentRate: Float
        var initialLogVariance: Float
        var epochs: Int
        var validation: Double
        /// Wall time of this configuration's training, seconds.
        var seconds: Double
    }

    struct VAERun: Codable, Equatable {
        var rate: Float
        var epochs: Int
        /// Best validation objective over its epochs (its weights are that epoch's).
        var score: Double
        var seconds: Double
    }

    /// The best SVI configuration so far: its settings and trained state.
    struct SVIState: Equatable {
        var configuration: EarlyDecoderTrainingConfiguration
        var validation: Double
        var decoder: [Float]
        var noise: [Float]?
        var mu: [Float]
        var logVariance: [Float]
    }

    /// The best VAE configuration so far.
    struct VAEState: Equatable {
        var configuration: VAETrainingConfiguration
        var score: Double
        var encoder: [Float]
        var decoder: [Float]
        var noise: [Float]?
    }

    struct Journal: Codable, Equatable {
        static let currentVersion = 1
        var formatVersion = Journal.currentVersion
        var protocolKey: String
        var svi: [SVIRun] = []
        var vae: [VAERun] = []
        var bestSVI: EarlyDecoderTrainingConfiguration?
        var bestSVIValidation: Double?
        var bestVAE: VAETrainingConfiguration?
        var bestVAEScore: Double?
        /// How many SVI and VAE configurations the protocol's search has (absent in journals
        /// written before they were recorded).
        var sviTotal: Int?
        var vaeTotal: Int?
    }

    var protocolKey: String
    var svi: [SVIRun] = []
    var vae: [VAERun] = []
    var bestSVI: SVIState?
    var bestVAE: VAEState?
    /// How many SVI and VAE configurations the cell's search has in all (for `pesvi progress`).
    var sviTotal: Int?
    var vaeTotal: Int?

    /// Seconds of the journaled configurations: the work a resumed cell does not repeat.
    var journaledSeconds: Double { svi.reduce(0) { $0 + $1.seconds } + vae.reduce(0) { $0 + $1.seconds } }

    func sviRun(decoderRate: Float, latentRate: Float, initialLogVariance: Float) -> SVIRun? {
        svi.first { $0.decoderRate == decoderRate && $0.latentRate == latentRate && $0.initialLogVariance == initialLogVariance }
    }

    func vaeRun(rate: Float) -> VAERun? { vae.first { $0.rate == rate } }

    /// Takes phase 1's trained state (decoder, noise variances, training posteriors).
    static func state(of p1: EarlyDecoderTraining, validation: Double) -> SVIState {
        SVIState(configuration: p1.configuration, validation: validation, decoder: p1.decoder.network.parameters.array,
                 noise: p1.decoder.logNoiseVariance?.array, mu: p1.trainPosteriors.mu.array,
                 logVariance: p1.trainPosteriors.logVariance.array)
    }

    static func state(of v: VAETraining, score: Double) -> VAEState {
        VAEState(configuration: v.configuration, score: score, encoder: v.encoder.network.parameters.array,
                 decoder: v.decoder.network.parameters.array, noise: v.decoder.logNoiseVariance?.array)
    }

    /// A decoder of the given shape holding `parameters` (and `noise`).
    static func decoder(latent: Int, dataWidth: Int, architecture: Architecture, objective: Objective,
                        parameters: [Float], noise: [Float]?) throws -> GaussianDecoder {
        var rng = RandomGenerator(seed: 0)
        let d = GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: architecture, objective: objective, rng: &rng)
        guard d.network.parameterCount == parameters.count, (d.logNoiseVariance?.count ?? 0) == (noise?.count ?? 0) else {
            throw ModelStoreError.invalid("search checkpoint: a decoder of \(parameters.count) parameters and \(noise?.count ?? 0) noise variances does not fit |z| = \(latent), \(architecture), d = \(dataWidth)")
        }
        d.network.parameters.assign(parameters)
        if let noise { d.logNoiseVariance?.assign(noise) }
        return d
    }

    static func encoder(latent: Int, dataWidth: Int, architecture: Architecture, parameters: [Float]) throws -> GaussianEncoder {
        var rng = RandomGenerator(seed: 0)
        let e = GaussianEncoder(latent: latent, dataWidth: dataWidth, architecture: architecture, rng: &rng)
        guard e.network.parameterCount == parameters.count else {
            throw ModelStoreError.invalid("search checkpoint: an encoder of \(parameters.count) parameters does not fit |z| = \(latent), \(architecture), d = \(dataWidth)")
        }
        e.network.parameters.assign(parameters)
        return e
    }

    // MARK: - File

    func encoded() throws -> SafetensorsFile {
        var tensors: [String: FloatTensor] = [:]
        func put(_ name: String, _ v: [Float]?) throws { if let v { tensors[name] = try FloatTensor(shape: [v.count], values: v) } }
        try put("svi.decoder", bestSVI?.decoder); try put("svi.noise", bestSVI?.noise)
        try put("svi.mu", bestSVI?.mu); try put("svi.logvar", bestSVI?.logVariance)
        try put("vae.encoder", bestVAE?.encoder); try put("vae.decoder", bestVAE?.decoder); try put("vae.noise", bestVAE?.noise)
        let journal = Journal(protocolKey: protocolKey, svi: svi, vae: vae, bestSVI: bestSVI?.configuration, bestSVIValidation: bestSVI?.validation,
                              bestVAE: bestVAE?.configuration, bestVAEScore: bestVAE?.score, sviTotal: sviTotal, vaeTotal: vaeTotal)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return SafetensorsFile(tensors: tensors, metadata: ["journal": String(decoding: try e.encode(journal), as: UTF8.self)])
    }

    /// Reads a checkpoint back. Throws when the file is unreadable, of another format
    /// version, or of another protocol (`path` names it in the message).
    static func decoded(_ file: SafetensorsFile, protocolKey: String, path: String) throws -> SearchCheckpoint {
        guard let text = file.metadata["journal"] else { throw ModelStoreError.invalid("\(path): no search journal; remove it to recompute the cell") }
        let journal: Journal
        do {
            journal = try ReproductionCellStore.decoder().decode(Journal.self, from: Data(text.utf8))
        } catch {
            throw ModelStoreError.invalid("\(path): not a readable search journal (\(error.localizedDescription)); remove it to recompute the cell")
        }
        try ReproductionCellStore.check(path: path, what: "search journal", format: journal.formatVersion, reads: Journal.currentVersion,
                                        storedKey: journal.protocolKey, key: protocolKey)
        func get(_ name: String) -> [Float]? { file.tensors[name]?.values }
        var out = SearchCheckpoint(protocolKey: protocolKey, svi: journal.svi, vae: journal.vae)
        out.sviTotal = journal.sviTotal; out.vaeTotal = journal.vaeTotal
        if let c = journal.bestSVI, let v = journal.bestSVIValidation {
            guard let dec = get("svi.decoder"), let mu = get("svi.mu"), let lv = get("svi.logvar"), mu.count == lv.count else {
                throw ModelStoreError.invalid("\(path): the journal names a best SVI configuration but its trained state is missing; remove it to recompute the cell")
            }
            out.bestSVI = SVIState(configuration: c, validation: v, decoder: dec, noise: get("svi.noise"), mu: mu, logVariance: lv)
        }
        if let c = journal.bestVAE, let s = journal.bestVAEScore {
            guard let enc = get("vae.encoder"), let dec = get("vae.decoder") else {
                throw ModelStoreError.invalid("\(path): the journal names a best VAE configuration but its trained state is missing; remove it to recompute the cell")
            }
            out.bestVAE = VAEState(configuration: c, score: s, encoder: enc, decoder: dec, noise: get("vae.noise"))
        }
        return out
    }
}

extension ReproductionCellStore {
    /// The search checkpoint of cell (|z|, arch): `z64-arch2.search.safetensors`.
    public func searchURL(z: Int, architecture: Architecture) -> URL {
        directory.appendingPathComponent(PaperReproduction.modelName(z: z, architecture: architecture) + ".search.safetensors")
    }

    /// The cell's search checkpoint, or nil when there is none. Throws when it is unreadable
    /// or of another protocol.
    func loadSearch(z: Int, architecture: Architecture) throws -> SearchCheckpoint? {
        let u = searchURL(z: z, architecture: architecture)
        guard FileManager.default.fileExists(atPath: u.path) else { return nil }
        let file: SafetensorsFile
        do { file = try Safetensors.read(u) } catch {
            throw ModelStoreError.invalid("\(u.path): not a readable search checkpoint (\(error)); remove it to recompute the cell")
        }
        return try SearchCheckpoint.decoded(file, protocolKey: protocolKey, path: u.path)
    }

    /// Writes the checkpoint atomically (creating the directory). A trained state with a
    /// non-finite value cannot be stored: then nothing is written and false is returned (a
    /// resumed run recomputes the cell's search).
    @discardableResult
    func saveSearch(_ s: SearchCheckpoint, z: Int, architecture: Architecture) throws -> Bool {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ModelStoreError.invalid("\(directory.path): cannot create the cells directory: \(error.localizedDescription)")
        }
        let bytes: [UInt8]
        do { bytes = try Safetensors.encode(s.encoded()) } catch { return false }
        try AtomicFile.write(bytes, to: searchURL(z: z, architecture: architecture))
        return true
    }

    func removeSearch(z: Int, architecture: Architecture) {
        try? FileManager.default.removeItem(at: searchURL(z: z, architecture: architecture))
    }
}

import Foundation
import Testing

/// Bad input to the real `pesvi` binary: one clear line on stderr, a non-zero exit, no crash,
/// no hang and nothing written.
@Suite(Pesvi.trait) struct CommandLineErrorTests {
    // MARK: - Data files given to `train`

    /// Runs `pesvi train --data <path>` and checks the clean-failure contract; no model is written.
    func trainFails(on data: String, dir: TemporaryDirectory, mentioning needles: [String],
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let out = dir.path("model-\(UUID().uuidString)")
        let r = try Pesvi.run(["train", "--data", data, "--out", out, "--epochs", "2", "--encoder-epochs", "2", "--quiet"])
        expectCleanFailure(r, mentioning: needles, sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, "stdout: \(r.stdout)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: out), "a model directory was written", sourceLocation: sourceLocation)
    }

    @Test func missingDataFile() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        try trainFails(on: dir.path("no-such-file.csv"), dir: dir, mentioning: ["no-such-file.csv", "no such file"])
    }

    @Test func nonNumericCSVCellNamesLineAndColumn() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("cells.csv", "a,b,c\n1,2,3\n4,5,6\n7,oops,9\n")
        try trainFails(on: f, dir: dir, mentioning: ["cells.csv", "line 4", "column 2", "oops"])
    }

    @Test func raggedCSVRows() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("ragged.csv", "1,2,3\n4,5,6\n7,8\n")
        try trainFails(on: f, dir: dir, mentioning: ["ragged.csv", "line 3", "expected 3", "found 2"])
    }

    @Test(arguments: ["empty.csv", "empty.npy"])
    func emptyFile(name: String) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write(name, "")
        try trainFails(on: f, dir: dir, mentioning: [name])
    }

    @Test(arguments: [("nan", "1,2\n3,4\nNaN,5\n", "line 3"), ("inf", "1,2\n3,inf\n", "line 2"), ("-inf", "1,2\n3,4\n5,-Infinity\n", "line 3")])
    func nonFiniteCSVValues(label: String, text: String, line: String) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("nonfinite-\(label).csv", text)
        try trainFails(on: f, dir: dir, mentioning: [line, "not finite"])
    }

    @Test func nonFiniteNPYValues() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        // 12 rows × 2 columns of float32: all 1.0 except a NaN at row 5, column 1, and +inf later.
        var bytes = npyBytes(descr: "<f4", shape: "(12, 2)", dataBytes: 0)
        for i in 0..<24 {
            let v: Float = i == 11 ? .nan : (i == 20 ? .infinity : 1)
            withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
        }
        let f = try dir.write("nonfinite.npy", bytes: bytes)
        try trainFails(on: f, dir: dir, mentioning: ["nonfinite.npy", "not finite"])
    }

    @Test func npyWithUnsupportedDtype() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("complex.npy", bytes: npyBytes(descr: "<c8", shape: "(12, 2)", dataBytes: 12 * 2 * 8))
        try trainFails(on: f, dir: dir, mentioning: ["complex.npy", "<c8"])
    }

    @Test func npyWithLyingHeader() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        // The header promises 100×4 float32 (1,600 bytes); only 40 bytes follow.
        let f = try dir.write("lying.npy", bytes: npyBytes(descr: "<f4", shape: "(100, 4)", dataBytes: 40))
        try trainFails(on: f, dir: dir, mentioning: ["lying.npy", "truncated"])
    }

    @Test func tooFewRowsToSplit() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("three.csv", "1,2\n3,4\n5,6\n")
        try trainFails(on: f, dir: dir, mentioning: ["10 rows"])
    }

    @Test func unknownDataExtension() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("data.xyz", "1,2\n")
        try trainFails(on: f, dir: dir, mentioning: ["data.xyz", ".xyz"])
    }

    @Test func dataFileWithoutExtension() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let f = try dir.write("plain", "1,2\n")
        try trainFails(on: f, dir: dir, mentioning: ["plain", "no file extension", ".csv or .npy"])
    }

    /// A mistyped name (here of the built-in "digits") says the file does not exist.
    @Test func mistypedDataName() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        try trainFails(on: dir.path("digitz"), dir: dir, mentioning: ["digitz", "no such file"])
        try trainFails(on: dir.path("data.nyp"), dir: dir, mentioning: ["data.nyp", "no such file"])
    }

    @Test func dataPathIsADirectory() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path("folder.csv"), withIntermediateDirectories: true)
        try trainFails(on: dir.path("folder.csv"), dir: dir, mentioning: ["folder.csv"])
    }

    // MARK: - Model directories given to `infer` and `evaluate`

    @Test func dataWidthDoesNotMatchTheModel() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (_, model) = try trainTinyModel(in: dir, vae: false)
        let narrow = dir.path("narrow.npy")
        let g = try Pesvi.run(["generate", "synthetic", "--n", "40", "--dim", "7", "--out", narrow])
        try #require(g.status == 0, "\(g)")
        let out = dir.path("P.npy")
        let i = try Pesvi.run(["infer", "--model", model, "--data", narrow, "--out", out, "--quiet"])
        expectCleanFailure(i, mentioning: ["narrow.npy", "7 columns", "12"])
        #expect(!FileManager.default.fileExists(atPath: out))
        let e = try Pesvi.run(["evaluate", "--model", model, "--data", narrow, "--svi-max-steps", "50"])
        expectCleanFailure(e, mentioning: ["narrow.npy", "7 columns", "12"])
        #expect(e.stdout.isEmpty)
    }

    /// Both `infer` and `evaluate` refuse the model directory with one line naming `file`.
    func modelRefused(_ model: String, data: String, dir: TemporaryDirectory, mentioning needles: [String],
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let out = dir.path("P-\(UUID().uuidString).npy")
        let i = try Pesvi.run(["infer", "--model", model, "--data", data, "--out", out, "--quiet"])
        expectCleanFailure(i, mentioning: needles, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: out), "infer wrote output", sourceLocation: sourceLocation)
        let e = try Pesvi.run(["evaluate", "--model", model, "--svi-max-steps", "50"])
        expectCleanFailure(e, mentioning: needles, sourceLocation: sourceLocation)
        #expect(e.stdout.isEmpty, "evaluate printed: \(e.stdout)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [8, 100, 1000, -4])
    func truncatedSafetensors(keep: Int) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir)
        let weights = URL(fileURLWithPath: model).appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        // keep < 0: drop that many bytes from the end (inside the last tensor's data).
        let n = keep >= 0 ? keep : bytes.count + keep
        try #require(n < bytes.count)
        try bytes.prefix(n).write(to: weights)
        try modelRefused(model, data: data, dir: dir, mentioning: ["model.safetensors"])
    }

    @Test(arguments: [
        ("not JSON", "{\"latent\": 3, \"dataWidth\": "),
        ("empty", ""),
        ("wrong type", "{\"latent\": \"three\"}"),
        ("array", "[1, 2, 3]"),
    ])
    func corruptedConfigJSON(label: String, text: String) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        try Data(text.utf8).write(to: URL(fileURLWithPath: model).appendingPathComponent("config.json"))
        try modelRefused(model, data: data, dir: dir, mentioning: ["config.json"])
    }

    /// Valid JSON whose values do not fit the weights or make no sense.
    @Test(arguments: [
        ("latent", "4", ["model.safetensors", "[4, "]),
        ("dataWidth", "11", ["model.safetensors", "11]"]),
        ("latent", "0", ["config.json", "latent"]),
        ("formatVersion", "99", ["config.json", "version 99"]),
        ("sviLearningRate", "-1", ["config.json", "sviLearningRate"]),
        ("sviLearningRate", "0", ["config.json", "sviLearningRate"]),
    ])
    func configJSONWithWrongValues(key: String, value: String, needles: [String]) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        try editConfig(model) { $0[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed) }
        try modelRefused(model, data: data, dir: dir, mentioning: needles)
    }

    /// A corrupted pace (negative or zero rate) must not silently refine uphill.
    @Test(arguments: ["-1", "0"])
    func configJSONWithBadPace(rate: String) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        try editConfig(model) { c in
            var pace = c["pace"] as! [String: Any]
            pace["learningRate"] = Double(rate)!
            c["pace"] = pace
        }
        try modelRefused(model, data: data, dir: dir, mentioning: ["config.json", "pace"])
    }

    func editConfig(_ model: String, _ edit: (inout [String: Any]) throws -> Void) throws {
        let url = URL(fileURLWithPath: model).appendingPathComponent("config.json")
        var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        try edit(&c)
        try JSONSerialization.data(withJSONObject: c).write(to: url)
    }

    @Test func missingModelDirectory() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let data = try dir.write("x.csv", "1,2\n3,4\n")
        try modelRefused(dir.path("no-such-model"), data: data, dir: dir, mentioning: ["no-such-model"])
    }

    @Test func missingWeightsFile() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        try FileManager.default.removeItem(atPath: model + "/model.safetensors")
        try modelRefused(model, data: data, dir: dir, mentioning: ["model.safetensors"])
    }

    @Test func inferToAnUnknownOutputType() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        let r = try Pesvi.run(["infer", "--model", model, "--data", data, "--out", dir.path("P.txt"), "--quiet"])
        expectCleanFailure(r, mentioning: ["P.txt"])
    }

    /// A refinement rate so large that the posteriors overflow: refused with a message about
    /// the inference, not about the file writer.
    @Test func inferThatDiverges() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (data, model) = try trainTinyModel(in: dir, vae: false)
        let out = dir.path("P.npy")
        let r = try Pesvi.run(["infer", "--model", model, "--data", data, "--lr", "1e38", "--steps", "3", "--out", out, "--quiet"])
        expectCleanFailure(r, mentioning: ["--lr"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    // MARK: - Arguments

    @Test func unknownOption() throws {
        let r = try Pesvi.run(["train", "--no-such-flag"])
        expectCleanFailure(r, singleLine: false)
        #expect(r.status == 64, "usage errors exit with EX_USAGE (64)\n\(r)")
        // With the required options given, the unknown one is named.
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let r2 = try Pesvi.run(["train", "--data", dir.path("x.csv"), "--out", dir.path("M"), "--no-such-flag"])
        expectCleanFailure(r2, singleLine: false, mentioning: ["--no-such-flag"])
        #expect(!FileManager.default.fileExists(atPath: dir.path("M")))
    }

    @Test func unknownSubcommand() throws {
        let r = try Pesvi.run(["frobnicate"])
        expectCleanFailure(r, singleLine: false, mentioning: ["frobnicate"])
        let r2 = try Pesvi.run(["generate", "nonsense"])
        expectCleanFailure(r2, singleLine: false, mentioning: ["nonsense"])
    }

    @Test(arguments: [
        ["train", "--data", "x.csv", "--out", "M", "--threads", "3"],
        ["train", "--data", "x.csv", "--out", "M", "--z", "0"],
        ["train", "--data", "x.csv", "--out", "M", "--arch", "7,x"],
        ["train", "--data", "x.csv", "--out", "M", "--objective", "likelihood"],
        ["infer", "--model", "M", "--data", "x.csv", "--out", "P.npy", "--steps", "-1"],
        ["infer", "--model", "M", "--data", "x.csv", "--out", "P.npy", "--lr", "nan"],
        ["evaluate", "--model", "M", "--svi-lr", "-0.5"],
        ["generate", "synthetic", "--n", "0", "--out", "x.npy"],
        ["bench", "train", "--seconds", "nan"],
        ["bench", "infer", "--seconds", "0"],
        ["bench", "gn", "--arch", "4"],
        ["bench", "gn", "--z", "0"],
        ["bench", "gn", "--smoothed-krylov=-1"],
        ["bench", "auto", "--arch", "4"],
        ["bench", "auto", "--points", "0"],
        ["bench", "gemm", "--shape", "256,300"],
        ["bench", "gemm", "--shape", "256,0,32"],
        ["bench", "gemm", "--shape", "a,b,c"],
        ["evaluate", "--model", "M", "--gn-trials", "0"],
        ["evaluate", "--model", "M", "--gn-smoothed-krylov=-1"],
        ["infer", "--model", "M", "--data", "x.csv", "--out", "P.npy", "--method", "gn", "--gn-tolerance=-1"],
        ["infer", "--model", "M", "--data", "x.csv", "--out", "P.npy", "--method", "gn", "--gn-trials", "0"],
        ["reproduce", "--dataset", "digits", "--out", "D", "--train-threads", "3"],
    ])
    func invalidOptionValues(arguments: [String]) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let r = try Pesvi.run(arguments, in: dir.url, timeout: 30)
        expectCleanFailure(r, singleLine: false)
        #expect(r.stdout.isEmpty, "\(r)")
    }

    /// Sizes whose data could never fit in memory are refused up front, not by a crash in the allocator.
    @Test(arguments: [["--n", "4611686018427387904", "--dim", "4"], ["--n", "3000000000", "--dim", "3000000000"], ["--n", "100000000000", "--dim", "1000"]])
    func absurdSyntheticSizes(sizes: [String]) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let r = try Pesvi.run(["generate", "synthetic"] + sizes + ["--out", dir.path("big.npy")], timeout: 30)
        expectCleanFailure(r, singleLine: false)
        #expect(!FileManager.default.fileExists(atPath: dir.path("big.npy")))
    }
}

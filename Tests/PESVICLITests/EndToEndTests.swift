import Foundation
import Testing
import PESVIData

/// generate → train → infer → evaluate through the real binary, on tiny data (seconds).
@Suite(Pesvi.trait) struct EndToEndTests {
    /// 300 synthetic rows of width 12 in `dir`/X.npy and a small model trained on them in
    /// `dir`/`name` (|z| = 3, a few epochs); `extra` adds `train` options.
    func tinyModel(in dir: TemporaryDirectory, arch: Int, name: String = "M", epochs: Int = 20, extra: [String] = []) throws -> (data: String, model: String) {
        let x = dir.path("X.npy"), m = dir.path(name)
        if !FileManager.default.fileExists(atPath: x) {
            try #require(try Pesvi.run(["generate", "synthetic", "--n", "300", "--dim", "12", "--out", x]).status == 0)
        }
        let t = try Pesvi.run(["train", "--data", x, "--z", "3", "--arch", "\(arch)", "--epochs", "\(epochs)", "--encoder-epochs", "5"] + extra + ["--out", m])
        try #require(t.status == 0, "\(t)")
        return (x, m)
    }

    /// `evaluate … --json` run successfully, its "methods" object.
    func evaluatedMethods(_ arguments: [String]) throws -> [String: [String: Any]] {
        let e = try Pesvi.run(["evaluate"] + arguments + ["--json"])
        try #require(e.status == 0, "\(e)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        return try #require(object["methods"] as? [String: [String: Any]])
    }

    /// `infer --method gn` with a Krylov preconditioner forms it once on the validation rows and
    /// stores it with the model (`krylov-preconditioner.npy`, |z| × |z|); the next run reads it
    /// and gives the same posteriors bit for bit; a truncated file is a clear error.
    @Test func inferStoresTheKrylovPreconditionerOnce() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (x, m) = try tinyModel(in: dir, arch: 3), p1 = dir.path("P1.npy"), p2 = dir.path("P2.npy")
        let file = m + "/krylov-preconditioner.npy"
        #expect(!FileManager.default.fileExists(atPath: file), "|z| = 3 is outside the default rule: train stores none")
        let args = ["infer", "--model", m, "--data", x, "--method", "gn", "--steps", "4", "--gn-preconditioner", "true"]
        let first = try Pesvi.run(args + ["--out", p1])
        try #require(first.status == 0, "\(first)")
        #expect(first.stderr.contains("Krylov preconditioner formed"), "\(first.stderr)")
        let c = try NPY.read(URL(fileURLWithPath: file))
        #expect(c.rows == 3 && c.cols == 3 && c.values.allSatisfy(\.isFinite))
        let second = try Pesvi.run(args + ["--out", p2])
        try #require(second.status == 0, "\(second)")
        #expect(!second.stderr.contains("Krylov preconditioner formed"), "\(second.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: p1)) == Data(contentsOf: URL(fileURLWithPath: p2)))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try bytes.prefix(bytes.count - 8).write(to: URL(fileURLWithPath: file))
        let broken = try Pesvi.run(args + ["--out", p2])
        #expect(broken.status != 0 && broken.stderr.contains("krylov-preconditioner.npy"), "\(broken)")
    }

    /// `train` stores PE-SVI-GN's schedule chosen on the validation rows; `infer --method gn`
    /// names it; a model without one (an older pesvi) chooses it on first use and stores it,
    /// `--search-pace` chooses again, and schedule flags take over without touching the store.
    @Test func gaussNewtonScheduleIsChosenStoredAndOverridden() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (x, m) = try tinyModel(in: dir, arch: 2), p = dir.path("G.npy")
        let configPath = m + "/config.json"
        func config() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        }
        func summary(_ words: [String]) throws -> (stderr: String, json: [String: Any]) {
            let r = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "gn", "--steps", "12", "--out", p, "--json"] + words)
            try #require(r.status == 0, "\(r)")
            return (r.stderr, try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]))
        }
        let trained = try #require(try config()["gaussNewtonSchedule"] as? [String: Any])
        #expect((trained["trials"] as? [Any])?.count == 2 && (trained["target"] as? Double ?? 0) > 0, "\(trained)")
        let names = ["standard", "smoothed to the end"]
        let stored = try summary([])
        #expect(names.contains(stored.json["schedule"] as? String ?? "") && !stored.stderr.contains("choosing"), "\(stored)")
        var older = try config()
        older["gaussNewtonSchedule"] = nil
        try JSONSerialization.data(withJSONObject: older).write(to: URL(fileURLWithPath: configPath))
        let first = try summary([])
        #expect(first.stderr.contains("Gauss-Newton schedule: ") && first.stderr.contains("stored in"), "\(first.stderr)")
        #expect(try config()["gaussNewtonSchedule"] != nil)
        let again = try summary(["--search-pace"])
        #expect(again.stderr.contains("Gauss-Newton schedule: "), "\(again.stderr)")
        let flags = try summary(["--gn-smoothing", "0"])
        #expect(flags.json["schedule"] as? String == "no smoothing" && !flags.stderr.contains("choosing"), "\(flags)")
        // Without validation rows (and no choice stored) the standard schedule, with a note; nothing stored.
        var none = try config()
        none["gaussNewtonSchedule"] = nil
        try JSONSerialization.data(withJSONObject: none).write(to: URL(fileURLWithPath: configPath))
        let validation = m + "/validation.npy", kept = dir.path("validation.npy")
        try FileManager.default.moveItem(atPath: validation, toPath: kept)
        let bare = try summary([])
        #expect(bare.json["schedule"] as? String == "standard" && bare.stderr.contains("no validation rows"), "\(bare)")
        #expect(try config()["gaussNewtonSchedule"] == nil)
        try FileManager.default.moveItem(atPath: kept, toPath: validation)
        _ = try summary(["--search-pace"])
        // evaluate names the schedule PE-SVI-GN took, in its JSON and its table.
        for (words, name) in [([String](), first.json["schedule"] as? String ?? "?"), (["--gn-smoothing", "0"], "no smoothing")] {
            let e = try Pesvi.run(["evaluate", "--model", m, "--svi-max-steps", "200", "--json"] + words)
            try #require(e.status == 0, "\(e)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
            #expect(object["gnSchedule"] as? String == name, "\(object)")
            let table = try Pesvi.run(["evaluate", "--model", m, "--svi-max-steps", "200"] + words)
            #expect(table.stdout.contains("[\(name) schedule]"), "\(table.stdout)")
        }
    }

    /// A linear decoder: `infer --method gn` takes the exact step (no pseudo-encoder pass), and
    /// in `evaluate` PE-SVI-GN reaches SVI in one step with a reconstruction no worse than SVI's
    /// converged one (it is the minimizer SVI approaches).
    @Test func linearDecoderGaussNewtonIsOneExactStep() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (x, m) = try tinyModel(in: dir, arch: 1), p = dir.path("G.npy")
        let i = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "gn", "--out", p])
        try #require(i.status == 0, "\(i)")
        #expect(i.stderr.contains("one exact step"), "\(i.stderr)")
        let posteriors = try NPY.read(URL(fileURLWithPath: p))
        #expect(posteriors.rows == 300 && posteriors.cols == 6 && posteriors.values.allSatisfy { $0.isFinite })
        let methods = try evaluatedMethods(["--model", m])
        let gn = try #require(methods["PE-SVI-GN"]), svi = try #require(methods["SVI"])
        #expect(gn["steps"] as? Double == 1, "\(gn)")
        let gnRecon = try #require(gn["reconstruction"] as? Double), sviRecon = try #require(svi["reconstruction"] as? Double)
        #expect(gnRecon <= sviRecon * 1.001, "GN \(gnRecon), SVI \(sviRecon)")
    }

    /// `evaluate --cauchy` adds PE-SVI-Cauchy (the Gauss-Newton model's minimizer along the
    /// gradient) beside the other methods, no worse than the pseudo-encoder's start; a model with
    /// the ELBO objective is refused with one line naming the flag; `infer --method cauchy` likewise.
    @Test func cauchyInEvaluateAndInferForReconstructionModelsOnly() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (x, m) = try tinyModel(in: dir, arch: 2)
        let methods = try evaluatedMethods(["--model", m, "--cauchy", "--svi-max-steps", "200"])
        let cauchy = try #require(methods["PE-SVI-Cauchy"]), start = try #require(methods["PE-SVI-0"])
        let c = try #require(cauchy["reconstruction"] as? Double), s0 = try #require(start["reconstruction"] as? Double)
        #expect(c.isFinite && c <= s0, "Cauchy \(c), start \(s0)")
        #expect(try evaluatedMethods(["--model", m, "--svi-max-steps", "200"])["PE-SVI-Cauchy"] == nil)
        let (_, e) = try tinyModel(in: dir, arch: 2, name: "E", epochs: 5, extra: ["--objective", "elbo"])
        let refused = try Pesvi.run(["evaluate", "--model", e, "--cauchy"])
        #expect(refused.status != 0 && refused.stderr.contains("--cauchy") && refused.stdout.isEmpty, "\(refused)")
        // `infer --method cauchy`: the same refinement for new points, finite, moved from the start.
        let p = dir.path("C.npy"), p0 = dir.path("C0.npy")
        let i = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "cauchy", "--out", p])
        try #require(i.status == 0, "\(i)")
        #expect(i.stderr.contains("Cauchy steps"), "\(i.stderr)")
        let refined = try NPY.read(URL(fileURLWithPath: p))
        #expect(refined.rows == 300 && refined.cols == 6 && refined.values.allSatisfy { $0.isFinite })
        try #require(try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "0", "--out", p0, "--quiet"]).status == 0)
        #expect(try NPY.read(URL(fileURLWithPath: p0)).values != refined.values)
        let inferRefused = try Pesvi.run(["infer", "--model", e, "--data", x, "--method", "cauchy", "--out", p])
        #expect(inferRefused.status != 0 && inferRefused.stderr.contains("--method cauchy"), "\(inferRefused)")
    }

    /// `train` stores the automatic pace's rate and step rule; `infer --search-pace` searches
    /// again and stores its choice (the same one: the search is seeded), naming it; the flag is
    /// refused with a fixed rate; a config.json without the rule (an older model) infers with
    /// Adam at its rate.
    @Test func automaticPaceStoresItsStepRuleAndSearchesAgainOnRequest() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (x, m) = try tinyModel(in: dir, arch: 2)
        let configPath = m + "/config.json"
        func config() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        }
        let trained = try config()
        let rule = try #require(trained["autoStepRule"] as? String)
        #expect(["adam", "cauchy", "subspace", "krylov"].contains(rule) && (trained["autoPace"] as? Double ?? 0) > 0)
        let p = dir.path("P.npy")
        let again = try Pesvi.run(["infer", "--model", m, "--data", x, "--out", p, "--search-pace", "--seed", "0"])
        try #require(again.status == 0, "\(again)")
        #expect(again.stderr.contains("automatic pace: ") && again.stderr.contains("stored in"), "\(again.stderr)")
        #expect(again.stderr.contains(["cauchy": "the Cauchy step", "subspace": "the subspace step", "krylov": "the Krylov step"][rule] ?? "Adam at rate"), "\(again.stderr)")
        #expect(try config()["autoStepRule"] as? String == rule)
        let refused = try Pesvi.run(["infer", "--model", m, "--data", x, "--out", p, "--search-pace", "--lr", "0.1"])
        #expect(refused.status != 0 && refused.stderr.contains("--search-pace"), "\(refused)")
        var older = try config()
        older["autoStepRule"] = nil
        try JSONSerialization.data(withJSONObject: older).write(to: URL(fileURLWithPath: configPath))
        let adam = try Pesvi.run(["infer", "--model", m, "--data", x, "--out", p])
        try #require(adam.status == 0, "\(adam)")
        #expect(adam.stderr.contains("guarded, Adam at rate"), "\(adam.stderr)")
    }

    @Test func generateTrainInferEvaluate() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let x = dir.path("X.npy"), m = dir.path("M"), p = dir.path("P.npy")

        let g = try Pesvi.run(["generate", "synthetic", "--n", "300", "--dim", "12", "--out", x])
        try #require(g.status == 0, "\(g)")
        let data = try NPY.read(URL(fileURLWithPath: x))
        #expect(data.rows == 300 && data.cols == 12)

        let t = try Pesvi.run(["train", "--data", x, "--z", "3", "--arch", "2", "--epochs", "5", "--encoder-epochs", "5",
                               "--vae", "--vae-epochs", "5", "--out", m])
        try #require(t.status == 0, "\(t)")
        #expect(t.stdout.contains("trained |z|=3"))
        #expect(t.stdout.contains("automatic pace: ") && t.stdout.contains("Gauss-Newton schedule: ") && t.stdout.contains("smoothed to the end"),
                "\(t.stdout)")
        for file in ["model.safetensors", "config.json", "validation.npy", "test.npy"] {
            #expect(FileManager.default.fileExists(atPath: m + "/" + file), "no \(file) in the model directory")
        }

        let i = try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "3", "--out", p])
        try #require(i.status == 0, "\(i)")
        let posteriors = try NPY.read(URL(fileURLWithPath: p))
        #expect(posteriors.rows == 300)
        #expect(posteriors.cols == 6)
        #expect(posteriors.values.allSatisfy { $0.isFinite })

        // --json: one object on stdout saying what ran (the automatic pace here, each point to
        // its own stop), the same steps as the line on stderr.
        let pj = dir.path("PJ.npy")
        let ij = try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "50", "--out", pj, "--json"])
        try #require(ij.status == 0, "\(ij)")
        #expect(ij.stdout.split(separator: "\n").count == 1, "--json prints one line: \(ij.stdout)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(ij.stdout.utf8)) as? [String: Any])
        #expect((summary["points"] as? Int) == 300 && (summary["latent"] as? Int) == 3 && (summary["method"] as? String) == "adam")
        #expect(["adam", "cauchy", "subspace", "krylov"].contains(summary["stepRule"] as? String ?? ""), "\(summary)")
        let meanSteps = try #require(summary["meanSteps"] as? Double), maxSteps = try #require(summary["maxSteps"] as? Int)
        #expect(meanSteps > 0 && meanSteps <= Double(maxSteps) && maxSteps <= 50, "\(summary)")
        #expect(ij.stderr.contains(String(format: "mean %.1f / max %d steps per point", meanSteps, maxSteps)), "\(ij.stderr) against \(summary)")
        #expect((summary["seconds"] as? Double).map { $0 > 0 } == true && (summary["out"] as? String) == pj)
        #expect(summary["rejectedTrials"] == nil && summary["exactStep"] == nil)
        // A fixed rate: exactly --steps Adam steps at it.
        let fixed = try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "3", "--lr", "0.1", "--out", p, "--quiet", "--json"])
        try #require(fixed.status == 0, "\(fixed)")
        let fixedSummary = try #require(try JSONSerialization.jsonObject(with: Data(fixed.stdout.utf8)) as? [String: Any])
        #expect((fixedSummary["stepRule"] as? String) == "adam" && (fixedSummary["learningRate"] as? Double).map { abs($0 - 0.1) < 1e-6 } == true)
        #expect((fixedSummary["meanSteps"] as? Double) == 3 && (fixedSummary["maxSteps"] as? Int) == 3)

        // CSV output of the same inference has the named columns and the same numbers.
        let pc = dir.path("P.csv")
        let ic = try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "3", "--out", pc, "--quiet"])
        try #require(ic.status == 0, "\(ic)")
        #expect(ic.stderr.isEmpty, "--quiet still wrote: \(ic.stderr)")
        let csv = try CSV.read(URL(fileURLWithPath: pc))
        #expect(csv.columnNames == ["mu0", "mu1", "mu2", "logvar0", "logvar1", "logvar2"])
        #expect(csv.values.map(\.bitPattern) == posteriors.values.map(\.bitPattern))

        // Gauss-Newton refinement: same shape, finite, and no worse at the mean than the encoder alone.
        let pg = dir.path("G.npy"), p0 = dir.path("P0.npy")
        let gnRun = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "gn", "--steps", "10", "--out", pg])
        try #require(gnRun.status == 0, "\(gnRun)")
        #expect(gnRun.stderr.contains("Gauss-Newton"))
        let gnJSON = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "gn", "--steps", "10", "--out", pg, "--quiet", "--json"])
        let gnSummary = try #require(try JSONSerialization.jsonObject(with: Data(gnJSON.stdout.utf8)) as? [String: Any])
        #expect((gnSummary["method"] as? String) == "gn" && gnSummary["stepRule"] == nil && (gnSummary["exactStep"] as? Bool) == false)
        #expect((gnSummary["rejectedTrials"] as? Int).map { $0 >= 0 } == true && (gnSummary["maxSteps"] as? Int).map { $0 >= 1 && $0 <= 10 } == true)
        let gn = try NPY.read(URL(fileURLWithPath: pg))
        #expect(gn.rows == 300 && gn.cols == 6 && gn.values.allSatisfy { $0.isFinite })
        let z0 = try Pesvi.run(["infer", "--model", m, "--data", x, "--steps", "0", "--out", p0, "--quiet"])
        try #require(z0.status == 0, "\(z0)")
        #expect(try NPY.read(URL(fileURLWithPath: p0)).values != gn.values, "Gauss-Newton changed nothing")
        let bad = try Pesvi.run(["infer", "--model", m, "--data", x, "--method", "newton", "--out", pg])
        #expect(bad.status != 0 && bad.stderr.contains("--method"))

        let e = try Pesvi.run(["evaluate", "--model", m, "--json", "--svi-max-steps", "200"])
        try #require(e.status == 0, "\(e)")
        let lines = e.stdout.split(separator: "\n")
        #expect(lines.count == 1, "--json prints one line: \(e.stdout)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(object["dataset"] is String)
        #expect((object["z"] as? Int) == 3)
        #expect((object["arch"] as? String) == "Arch2")
        let methods = try #require(object["methods"] as? [String: Any])
        // The paper's four methods, plus the ones beyond the paper (PE-SVI-auto, PE-SVI-GN).
        #expect(Set(["VAE", "SVI", "PE-SVI-0", "PE-SVI-25"]).isSubset(of: Set(methods.keys)))
        #expect(Set(methods.keys).isSubset(of: ["VAE", "SVI", "PE-SVI-0", "PE-SVI-25", "PE-SVI-auto", "PE-SVI-GN"]))
        let vae = try #require(methods["VAE"] as? [String: Any])
        #expect(isFiniteNumber(vae["reconstruction"]) && isFiniteNumber(vae["seconds"]))
        for name in ["SVI", "PE-SVI-0", "PE-SVI-25", "PE-SVI-auto"] where methods[name] != nil {
            let entry = try #require(methods[name] as? [String: Any], "no \(name)")
            #expect(isFiniteNumber(entry["reconstruction"]), "\(name).reconstruction")
            #expect(isFiniteNumber(entry["seconds"]), "\(name).seconds")
            let steps = entry["steps"]
            #expect(entry.keys.contains("steps"), "\(name) has no steps key")
            #expect(steps is NSNull || (steps as? Double).map { $0 >= 0 } == true, "\(name).steps = \(String(describing: steps))")
        }
        let sviSteps = try #require((methods["SVI"] as? [String: Any])?["steps"] as? Int, "SVI.steps is a number")
        #expect(sviSteps <= 200)
        // The per-point methods also carry their whole run to each point's own stop: mean and
        // most steps per point, and its seconds, at least the steps and seconds to SVI's level.
        #expect(methods["PE-SVI-auto"] != nil && methods["PE-SVI-GN"] != nil)
        for name in ["PE-SVI-auto", "PE-SVI-GN"] {
            let entry = try #require(methods[name] as? [String: Any], "no \(name)")
            let runSteps = try #require(entry["runSteps"] as? Double, "\(name) has no runSteps")
            let runMax = try #require(entry["runMaxSteps"] as? Int, "\(name) has no runMaxSteps")
            let runSeconds = try #require(entry["runSeconds"] as? Double, "\(name) has no runSeconds")
            #expect(runSteps >= 0 && Double(runMax) >= runSteps && runMax >= 1, "\(name): mean \(runSteps), max \(runMax)")
            if let steps = entry["steps"] as? Double { #expect(steps <= runSteps + 1e-12, "\(name): \(steps) steps to SVI, \(runSteps) in all") }
            #expect(runSeconds.isFinite && runSeconds >= (entry["seconds"] as? Double ?? .infinity) - 1e-12, "\(name).runSeconds")
        }
        for name in ["VAE", "SVI", "PE-SVI-0", "PE-SVI-25"] {
            let entry = try #require(methods[name] as? [String: Any])
            #expect(entry["runSteps"] == nil && entry["runMaxSteps"] == nil && entry["runSeconds"] == nil, "\(name) is not a per-point method")
        }

        for name in methods.keys { #expect((methods[name] as? [String: Any])?["secondsRuns"] == nil, "one timed run: no secondsRuns") }

        // --per-point: one row per test point, one column per method; the column means are
        // the reported reconstructions (the same numbers as without it).
        let pp = dir.path("perpoint.csv")
        let ep = try Pesvi.run(["evaluate", "--model", m, "--json", "--svi-max-steps", "200", "--per-point", pp])
        try #require(ep.status == 0, "\(ep)")
        let perPoint = try CSV.read(URL(fileURLWithPath: pp))
        let testRows = try NPY.read(URL(fileURLWithPath: m + "/test.npy")).rows
        #expect(perPoint.rows == testRows && perPoint.cols == methods.count)
        #expect(Set(perPoint.columnNames ?? []) == Set(methods.keys), "\(perPoint.columnNames ?? [])")
        let again = try #require(try JSONSerialization.jsonObject(with: Data(ep.stdout.utf8)) as? [String: Any])
        let againMethods = try #require(again["methods"] as? [String: Any])
        for (j, name) in (perPoint.columnNames ?? []).enumerated() {
            let mean = (0..<perPoint.rows).reduce(0.0) { $0 + Double(perPoint.values[$1 * perPoint.cols + j]) } / Double(perPoint.rows)
            let reported = try #require((againMethods[name] as? [String: Any])?["reconstruction"] as? Double)
            let before = try #require((methods[name] as? [String: Any])?["reconstruction"] as? Double)
            #expect(reported == before, "\(name): --per-point changed the reconstruction")
            #expect(abs(mean - reported) <= 1e-5 * max(reported, 1e-12), "\(name): per-point mean \(mean), reported \(reported)")
        }
        // bench latency on the model: one row per batch size, positive medians, the stored rule.
        let lat = try Pesvi.run(["bench", "latency", "--model", m, "--points", "1,7", "--repeats", "2", "--json"])
        try #require(lat.status == 0, "\(lat)")
        let latency = try #require(try JSONSerialization.jsonObject(with: Data(lat.stdout.utf8)) as? [String: Any])
        let latencyRows = try #require(latency["rows"] as? [[String: Any]])
        #expect(latencyRows.compactMap { $0["points"] as? Int } == [1, 7])
        for row in latencyRows {
            for key in ["encoderMilliseconds", "autoMilliseconds", "autoColdMilliseconds", "gaussNewtonMilliseconds", "gaussNewtonColdMilliseconds"] {
                #expect((row[key] as? Double).map { $0 > 0 && $0.isFinite } == true, "\(key) in \(row)")
            }
            #expect((row["autoMeanSteps"] as? Double).map { $0 >= 0 && $0 <= 50 } == true && (row["gaussNewtonMeanSteps"] as? Double) != nil)
        }
        #expect(["adam", "cauchy", "subspace", "krylov"].contains(latency["stepRule"] as? String ?? ""))
        // Its PE-SVI-GN is the one `infer --method gn` runs: the same steps on the same 7 rows.
        let tests = try NPY.read(URL(fileURLWithPath: m + "/test.npy"))
        let seven = dir.path("seven.npy")
        try NPY.write(try DataMatrix(rows: 7, cols: tests.cols, values: Array(tests.values[0..<(7 * tests.cols)])), to: URL(fileURLWithPath: seven))
        let gnInfer = try Pesvi.run(["infer", "--model", m, "--data", seven, "--out", dir.path("seven-gn.npy"), "--method", "gn",
                                     "--steps", "50", "--json", "--quiet"])
        try #require(gnInfer.status == 0, "\(gnInfer)")
        let sevenSummary = try #require(try JSONSerialization.jsonObject(with: Data(gnInfer.stdout.utf8)) as? [String: Any])
        #expect((sevenSummary["meanSteps"] as? Double) == (latencyRows[1]["gaussNewtonMeanSteps"] as? Double), "\(sevenSummary) vs \(latencyRows[1])")
        let badSizes = try Pesvi.run(["bench", "latency", "--model", m, "--points", "1,0"])
        #expect(badSizes.status != 0 && badSizes.stderr.contains("--points"), "\(badSizes)")

        // A wrong output type is refused before the comparison runs (nothing on stdout).
        let badType = try Pesvi.run(["evaluate", "--model", m, "--svi-max-steps", "200", "--per-point", dir.path("perpoint.txt")])
        #expect(badType.status != 0 && badType.stderr.contains("perpoint.txt") && badType.stdout.isEmpty, "\(badType)")

        // Timed three times: the same numbers, each method's seconds the median of its three runs.
        let r = try Pesvi.run(["evaluate", "--model", m, "--json", "--svi-max-steps", "200", "--timing-repeats", "3"])
        try #require(r.status == 0, "\(r)")
        let repeated = try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["methods"] as? [String: Any])
        #expect(Set(repeated.keys) == Set(methods.keys))
        for (name, value) in repeated {
            let entry = try #require(value as? [String: Any]), once = try #require(methods[name] as? [String: Any])
            #expect((entry["reconstruction"] as? Double) == (once["reconstruction"] as? Double), "\(name): the repeats changed its result")
            #expect(String(describing: entry["steps"]) == String(describing: once["steps"]), "\(name).steps")
            #expect(String(describing: entry["runSteps"]) == String(describing: once["runSteps"])
                    && String(describing: entry["runMaxSteps"]) == String(describing: once["runMaxSteps"]), "\(name).runSteps")
            let runs = try #require(entry["secondsRuns"] as? [Double], "\(name) has no secondsRuns")
            #expect(runs.count == 3 && runs.allSatisfy { $0.isFinite && $0 >= 0 })
            #expect((entry["seconds"] as? Double) == runs.sorted()[1], "\(name).seconds is not the median of \(runs)")
        }
        let badRepeats = try Pesvi.run(["evaluate", "--model", m, "--timing-repeats", "0"])
        #expect(badRepeats.status != 0 && badRepeats.stderr.contains("--timing-repeats"))

        // The table form works too.
        let table = try Pesvi.run(["evaluate", "--model", m, "--svi-max-steps", "200", "--data", x])
        try #require(table.status == 0, "\(table)")
        #expect(table.stdout.contains("PE-SVI-25"))
    }

    func isFiniteNumber(_ v: Any?) -> Bool {
        guard let n = v as? NSNumber, !(v is Bool) else { return false }
        return n.doubleValue.isFinite
    }

    /// The same seed gives byte-identical weights; another seed gives other weights.
    @Test func sameSeedSameBytes() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let a = try trainTinyModel(in: dir, seed: 7, model: "A").model
        let b = try trainTinyModel(in: dir, seed: 7, model: "B").model
        let c = try trainTinyModel(in: dir, seed: 8, model: "C").model
        func bytes(_ m: String, _ f: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: m).appendingPathComponent(f)) }
        #expect(try bytes(a, "model.safetensors") == bytes(b, "model.safetensors"))
        #expect(try bytes(a, "test.npy") == bytes(b, "test.npy"))
        #expect(try bytes(a, "validation.npy") == bytes(b, "validation.npy"))
        #expect(try bytes(a, "model.safetensors") != bytes(c, "model.safetensors"))
        #expect(try bytes(a, "test.npy") != bytes(c, "test.npy"))

        // And the same seed at inference: identical posteriors.
        let data = dir.path("X-300x12.npy")
        var outs: [Data] = []
        for k in 0..<2 {
            let p = dir.path("P\(k).npy")
            let r = try Pesvi.run(["infer", "--model", a, "--data", data, "--steps", "5", "--seed", "3", "--out", p, "--quiet"])
            try #require(r.status == 0, "\(r)")
            outs.append(try Data(contentsOf: URL(fileURLWithPath: p)))
        }
        #expect(outs[0] == outs[1])
    }

    /// One thread and two threads train the same model.
    @Test func threadCountDoesNotChangeTheWeights() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let data = dir.path("X.npy")
        let g = try Pesvi.run(["generate", "synthetic", "--n", "300", "--dim", "12", "--out", data])
        try #require(g.status == 0, "\(g)")
        var weights: [Data] = []
        for threads in [1, 2] {
            let m = dir.path("M\(threads)")
            let r = try Pesvi.run(["train", "--data", data, "--z", "3", "--epochs", "4", "--encoder-epochs", "4", "--seed", "5",
                                   "--threads", "\(threads)", "--quiet", "--out", m])
            try #require(r.status == 0, "\(r)")
            weights.append(try Data(contentsOf: URL(fileURLWithPath: m + "/model.safetensors")))
        }
        #expect(weights[0] == weights[1])
    }

    /// `bench gn` on a tiny shape: one JSON object with positive timings whose ratio is theirs.
    @Test func benchGaussNewtonJSON() throws {
        let r = try Pesvi.run(["bench", "gn", "--points", "40", "--z", "4", "--dim", "10", "--arch", "3", "--threads", "1",
                               "--seconds", "0.05", "--json"], timeout: 60)
        try #require(r.status == 0, "\(r)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["bench"] as? String == "gn" && o["arch"] as? String == "Arch3" && o["z"] as? Int == 4)
        let gn = try #require(o["ms_per_iteration"] as? Double), svi = try #require(o["ms_per_svi_step"] as? Double)
        let ratio = try #require(o["svi_steps_per_iteration"] as? Double)
        #expect(gn > 0 && svi > 0)
        #expect(abs(ratio - gn / svi) <= 0.01 * ratio + 0.01, "ratio \(ratio) vs \(gn) / \(svi)")
        // A ReLU decoder's smoothed iteration is timed too.
        let smoothed = try #require(o["ms_per_smoothed_iteration"] as? Double), smoothedRatio = try #require(o["svi_steps_per_smoothed_iteration"] as? Double)
        #expect(smoothed > 0 && abs(smoothedRatio - smoothed / svi) <= 0.01 * smoothedRatio + 0.01)
        #expect((o["ms_per_krylov4_iteration"] as? Double).map { $0 > 0 } == true)
        // and a smoothed one solved in a Krylov subspace (16 by default; 3 asked for below).
        #expect(o["smoothed_krylov"] as? Int == 16 && (o["ms_per_smoothed_krylov_iteration"] as? Double).map { $0 > 0 } == true)
        // d = 10 > |z| = 4: the |z| × |z| systems; with d < |z| the d × d ones.
        #expect(o["solve"] as? String == "primal")
        let wide = try Pesvi.run(["bench", "gn", "--points", "40", "--z", "12", "--dim", "5", "--arch", "2", "--threads", "1",
                                  "--seconds", "0.05", "--json", "--smoothed-krylov", "3"], timeout: 60)
        try #require(wide.status == 0, "\(wide)")
        let w = try #require(try JSONSerialization.jsonObject(with: Data(wide.stdout.utf8)) as? [String: Any])
        #expect(w["solve"] as? String == "data space" && (w["ms_per_iteration"] as? Double).map { $0 > 0 } == true)
        #expect(w["smoothed_krylov"] as? Int == 3 && (w["ms_per_smoothed_krylov_iteration"] as? Double).map { $0 > 0 } == true)
        #expect(o["preconditioned"] as? Bool == false)
        // --preconditioned: that smoothed Krylov iteration with a preconditioner.
        let pre = try Pesvi.run(["bench", "gn", "--points", "40", "--z", "4", "--dim", "10", "--arch", "3", "--threads", "1",
                                 "--seconds", "0.05", "--json", "--smoothed-krylov", "3", "--preconditioned"], timeout: 60)
        try #require(pre.status == 0, "\(pre)")
        let q = try #require(try JSONSerialization.jsonObject(with: Data(pre.stdout.utf8)) as? [String: Any])
        #expect(q["preconditioned"] as? Bool == true && (q["ms_per_smoothed_krylov_iteration"] as? Double).map { $0 > 0 } == true)
    }

    /// `bench gemm --shape` measures exactly the shapes asked for: after the probe's line, one
    /// JSON object per op and shape, in order, with a positive speed.
    @Test func benchGEMMChosenShapes() throws {
        let r = try Pesvi.run(["bench", "gemm", "--shape", "9,5,3", "17,33,40", "--threads", "1", "--repeats", "1", "--json"],
                              timeout: 60)
        try #require(r.status == 0, "\(r)")
        let lines = r.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let cases = lines.compactMap { $0 }.filter { $0["op"] != nil }
        let got = cases.map { "\($0["op"]!) \($0["m"]!),\($0["k"]!),\($0["n"]!)" }
        #expect(got == ["NN 9,5,3", "TN 9,5,3", "NT 9,5,3", "NN 17,33,40", "TN 17,33,40", "NT 17,33,40"], "\(r.stdout)")
        #expect(cases.allSatisfy { ($0["gflops"] as? Double ?? 0) > 0 })
    }

    /// `bench auto` on a tiny shape: one JSON object with positive timings whose ratios are theirs.
    @Test func benchGuardedRefinementJSON() throws {
        let r = try Pesvi.run(["bench", "auto", "--points", "40", "--z", "4", "--dim", "10", "--arch", "2", "--threads", "1",
                               "--seconds", "0.05", "--json"], timeout: 60)
        try #require(r.status == 0, "\(r)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["bench"] as? String == "auto" && o["arch"] as? String == "Arch2" && o["z"] as? Int == 4)
        let paired = try #require(o["ms_per_iteration"] as? Double), both = try #require(o["ms_per_iteration_both_samples"] as? Double)
        let svi = try #require(o["ms_per_svi_step"] as? Double)
        let ratio = try #require(o["svi_steps_per_iteration"] as? Double), ratioBoth = try #require(o["svi_steps_per_iteration_both_samples"] as? Double)
        #expect(paired > 0 && both > 0 && svi > 0)
        #expect(abs(ratio - paired / svi) <= 0.01 * ratio + 0.01, "ratio \(ratio) vs \(paired) / \(svi)")
        #expect(abs(ratioBoth - both / svi) <= 0.01 * ratioBoth + 0.01, "ratio \(ratioBoth) vs \(both) / \(svi)")
        let atMean = try #require(o["ms_per_iteration_at_mean"] as? Double)
        let ratioMean = try #require(o["svi_steps_per_iteration_at_mean"] as? Double)
        #expect(atMean > 0 && abs(ratioMean - atMean / svi) <= 0.01 * ratioMean + 0.01, "ratio \(ratioMean) vs \(atMean) / \(svi)")
        for (ms, steps) in [("ms_per_cauchy_iteration", "svi_steps_per_cauchy_iteration"),
                            ("ms_per_cauchy_iteration_forming_jg", "svi_steps_per_cauchy_iteration_forming_jg"),
                            ("ms_per_subspace_iteration", "svi_steps_per_subspace_iteration"),
                            ("ms_per_krylov_iteration", "svi_steps_per_krylov_iteration")] {
            let m = try #require(o[ms] as? Double), s = try #require(o[steps] as? Double)
            #expect(m > 0 && abs(s - m / svi) <= 0.01 * s + 0.01, "\(steps) \(s) vs \(m) / \(svi)")
        }
    }

    /// `reproduce --save-models` leaves each cell's model, and `evaluate` on it with the
    /// comparison seed (seed + 9) repeats the cell's numbers exactly.
    @Test func reproduceSavedModelRepeatsItsCell() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let out = dir.path("R")
        let r = try Pesvi.run(["reproduce", "--dataset", "synthetic", "--n", "200", "--dim", "8", "--z", "2", "--arch", "2",
                               "--quick", "--out", out, "--save-models", "--threads", "1", "--quiet"], timeout: 120)
        try #require(r.status == 0, "\(r)")
        let model = out + "/models/z2-arch2"
        for file in ["model.safetensors", "config.json", "validation.npy", "test.npy"] {
            #expect(FileManager.default.fileExists(atPath: model + "/" + file), "no \(file) in the saved cell model")
        }
        let e = try Pesvi.run(["evaluate", "--model", model, "--seed", "9", "--threads", "1", "--json"], timeout: 120)
        try #require(e.status == 0, "\(e)")
        let again = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let cells = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        let cell = try #require(cells.first)
        let a = try #require(again["methods"] as? [String: [String: Any]]), b = try #require(cell["methods"] as? [String: [String: Any]])
        #expect(Set(a.keys) == Set(b.keys))
        for (name, m) in b {
            #expect(a[name]?["reconstruction"] as? Double == m["reconstruction"] as? Double, "\(name): reconstruction differs")
            #expect(a[name]?["steps"] as? Double == m["steps"] as? Double, "\(name): steps differ")
        }
    }

    /// `reproduce --resume` after a shorter run keeps the finished cell and computes the new
    /// one; the outputs then hold both. The same --out under another seed is refused.
    @Test func reproduceResumesFinishedCells() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let out = dir.path("R")
        let base = ["reproduce", "--dataset", "synthetic", "--n", "200", "--dim", "8", "--arch", "1", "--quick", "--out", out, "--threads", "1"]
        let first = try Pesvi.run(base + ["--z", "2"], timeout: 120)
        try #require(first.status == 0, "\(first)")
        #expect(FileManager.default.fileExists(atPath: out + "/cells/z2-arch1.json"))
        let second = try Pesvi.run(base + ["--z", "2,3", "--resume"], timeout: 120)
        try #require(second.status == 0, "\(second)")
        #expect(second.stderr.contains("cell |z|=2 Arch1: kept from"), "\(second.stderr)")
        #expect(second.stderr.contains("cell |z|=3 Arch1: searching"))
        let cells = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        #expect(cells.compactMap { $0["z"] as? Int } == [2, 3])
        let other = try Pesvi.run(base + ["--z", "2", "--resume", "--seed", "4"], timeout: 120)
        #expect(other.status != 0 && other.stderr.contains("another protocol"), "\(other)")
        // `pesvi progress` lists the finished cells; a directory that is no run is a clear error.
        let progress = try Pesvi.run(["progress", "--out", out], timeout: 30)
        #expect(progress.status == 0 && progress.stdout.contains("z2-arch1: done") && progress.stdout.contains("z3-arch1: done")
                && progress.stdout.contains("2 cells done"), "\(progress)")
        let missing = try Pesvi.run(["progress", "--out", dir.path("nothing")], timeout: 30)
        #expect(missing.status != 0 && missing.stderr.contains("cannot list it"), "\(missing)")
    }
}

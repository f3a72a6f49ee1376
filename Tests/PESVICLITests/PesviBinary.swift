import Foundation
import Testing

/// Runs the real `pesvi` executable as a subprocess.
///
/// The binary is looked for next to the test bundle first (the directory `swift test` builds
/// into, so the binary matches the configuration under test), then under the package's
/// `.build/release` and `.build/debug`.
enum Pesvi {
    static let executable: URL? = {
        var candidates: [URL] = []
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for b in Bundle.allBundles { candidates.append(b.bundleURL.deletingLastPathComponent()) }
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            candidates.append(URL(fileURLWithPath: arg0).deletingLastPathComponent())
        }
        // #filePath: <root>/Tests/PESVICLITests/PesviBinary.swift
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/release"))
        candidates.append(root.appendingPathComponent(".build/debug"))
        for dir in candidates {
            let u = dir.appendingPathComponent("pesvi")
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: u.path) {
                return u
            }
        }
        return nil
    }()

    static var isAvailable: Bool { executable != nil }

    struct Result: CustomStringConvertible {
        var status: Int32
        /// True when the process died of a signal (a crash) rather than exiting.
        var signalled: Bool
        var timedOut: Bool
        var stdout: String
        var stderr: String

        /// stderr's non-empty lines.
        var stderrLines: [String] {
            stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }

        var description: String {
            "status \(status)\(signalled ? " (signal)" : "")\(timedOut ? " (timed out)" : "")\n--- stderr:\n\(stderr)\n--- stdout:\n\(stdout.prefix(2000))"
        }
    }

    /// Runs `pesvi arguments…` in `directory`, killing it after `timeout` seconds.
    static func run(_ arguments: [String], in directory: URL? = nil, timeout: Double = 60) throws -> Result {
        guard let exe = executable else { throw SkipError() }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-cli-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("stdout"), errURL = tmp.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)

        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = directory }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                timedOut = true
                p.terminate()
                Thread.sleep(forTimeInterval: 0.5)
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        p.waitUntilExit()
        try out.close(); try err.close()
        let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        return Result(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
                      timedOut: timedOut, stdout: stdout, stderr: stderr)
    }

    struct SkipError: Error, CustomStringConvertible {
        var description: String { "the pesvi executable was not found next to the test bundle or in .build/{release,debug}; run `swift build` first" }
    }

    /// The condition trait for tests that need the binary.
    static let trait = ConditionTrait.enabled(if: Pesvi.isAvailable,
        "pesvi executable not found next to the test bundle or in .build/release or .build/debug (run `swift build -c release`)")
}

/// Words that only appear when the process crashed or printed a runtime backtrace.
let crashMarkers = ["Fatal error", "Illegal instruction", "Segmentation fault", "Backtrac", "Program crashed", "Signal ", "Thread 0", "Precondition failed"]

/// Checks the failure contract: non-zero exit, no crash or timeout, and stderr of exactly one
/// non-empty line (data and model errors) or `Error: …` then usage (argument errors).
@discardableResult
func expectCleanFailure(_ r: Pesvi.Result, singleLine: Bool = true, mentioning needles: [String] = [],
                        sourceLocation: SourceLocation = #_sourceLocation) -> String {
    #expect(!r.timedOut, "timed out\n\(r)", sourceLocation: sourceLocation)
    #expect(!r.signalled, "killed by a signal (crash)\n\(r)", sourceLocation: sourceLocation)
    #expect(r.status != 0, "exit status 0 for bad input\n\(r)", sourceLocation: sourceLocation)
    for m in crashMarkers {
        #expect(!r.stderr.contains(m), "stderr contains '\(m)'\n\(r)", sourceLocation: sourceLocation)
    }
    let lines = r.stderrLines
    #expect(!lines.isEmpty, "stderr is empty\n\(r)", sourceLocation: sourceLocation)
    if singleLine {
        #expect(lines.count == 1, "stderr has \(lines.count) lines, expected one\n\(r)", sourceLocation: sourceLocation)
    } else {
        #expect(lines.first?.hasPrefix("Error: ") == true, "first stderr line is not 'Error: …'\n\(r)", sourceLocation: sourceLocation)
    }
    let first = lines.first ?? ""
    for n in needles {
        #expect(first.contains(n), "error line does not mention '\(n)': \(first)", sourceLocation: sourceLocation)
    }
    return first
}

/// A fresh directory under the temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-cli-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: url.appendingPathComponent(name)); return path(name)
    }
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        try Data(bytes).write(to: url.appendingPathComponent(name)); return path(name)
    }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A `.npy` file's bytes: version 1.0 header with `descr` and `shape`, then `dataBytes` zero bytes.
func npyBytes(descr: String, shape: String, dataBytes: Int) -> [UInt8] {
    let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
    let unpadded = 10 + dict.utf8.count + 1
    let total = (unpadded + 63) / 64 * 64
    let text = dict + String(repeating: " ", count: total - unpadded) + "\n"
    let n = UInt16(text.utf8.count)
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(text.utf8)
        + [UInt8](repeating: 0, count: dataBytes)
}

/// Generates tiny synthetic data and trains a tiny model with the binary; returns (data, model dir).
func trainTinyModel(in dir: TemporaryDirectory, n: Int = 300, dim: Int = 12, seed: Int = 0, vae: Bool = true,
                    model: String = "M", sourceLocation: SourceLocation = #_sourceLocation) throws -> (data: String, model: String) {
    let data = dir.path("X-\(n)x\(dim).npy")
    if !FileManager.default.fileExists(atPath: data) {
        let g = try Pesvi.run(["generate", "synthetic", "--n", "\(n)", "--dim", "\(dim)", "--out", data])
        try #require(g.status == 0, "generate failed\n\(g)", sourceLocation: sourceLocation)
    }
    var args = ["train", "--data", data, "--z", "3", "--arch", "2", "--epochs", "5", "--encoder-epochs", "5",
                "--seed", "\(seed)", "--quiet", "--out", dir.path(model)]
    if vae { args += ["--vae", "--vae-epochs", "5"] }
    let t = try Pesvi.run(args)
    try #require(t.status == 0, "train failed\n\(t)", sourceLocation: sourceLocation)
    return (data, dir.path(model))
}

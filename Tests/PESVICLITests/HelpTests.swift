import Foundation
import Testing

/// Every command answers `--help` (and `-h`) with its usage on stdout and exit status 0.
@Suite(Pesvi.trait) struct HelpTests {
    @Test(arguments: [
        [], ["demo"], ["train"], ["infer"], ["evaluate"], ["generate"], ["generate", "synthetic"],
        ["bench"], ["bench", "train"], ["bench", "infer"], ["bench", "gn"], ["bench", "auto"],
    ])
    func helpExitsZero(command: [String]) throws {
        for flag in ["--help", "-h"] {
            let r = try Pesvi.run(command + [flag], timeout: 30)
            #expect(r.status == 0 && !r.signalled && !r.timedOut, "pesvi \((command + [flag]).joined(separator: " "))\n\(r)")
            let usage = "USAGE: pesvi" + command.map { " " + $0 }.joined()
            #expect(r.stdout.contains(usage), "no '\(usage)' in\n\(r.stdout)")
            #expect(r.stdout.contains("OPTIONS:"))
            #expect(r.stderr.isEmpty, "stderr: \(r.stderr)")
        }
    }

    @Test func helpSubcommandForm() throws {
        let r = try Pesvi.run(["help", "bench", "infer"], timeout: 30)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("USAGE: pesvi bench infer"))
    }

    @Test func rootHelpListsEverySubcommand() throws {
        let r = try Pesvi.run(["--help"], timeout: 30)
        for name in ["demo", "train", "infer", "evaluate", "generate", "bench"] {
            #expect(r.stdout.contains("  \(name) "), "root help does not list \(name)")
        }
    }
}

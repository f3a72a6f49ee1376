import Testing
@testable import PESVICLI

@Suite struct CommandParsingTests {
    @Test func unknownOptionIsRejected() {
        #expect(throws: (any Error).self) { try PESVICommand.parseAsRoot(["--no-such-flag"]) }
    }

    /// `--init-logvar -4` (a negative value after a space) parses as the value, not as an
    /// unknown flag `-4`; `--init-logvar=-4` keeps working.
    @Test(arguments: [["--init-logvar", "-4"], ["--init-logvar=-4"]])
    func negativeInitialLogVarianceParses(_ words: [String]) throws {
        let options = try ModelOptions.parse(words)
        #expect(options.initLogvar == -4)
    }
}

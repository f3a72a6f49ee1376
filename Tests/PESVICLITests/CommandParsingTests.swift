import Testing
@testable import PESVICLI

@Suite struct CommandParsingTests {
    @Test func unknownOptionIsRejected() {
        #expect(throws: (any Error).self) { try PESVICommand.parseAsRoot(["--no-such-flag"]) }
    }
}

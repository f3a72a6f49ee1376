import Foundation
import Testing
@testable import PESVIExperiments

/// A hand-driven clock and a sink that records every write.
final class ProgressHarness {
    var now = 100.0
    var writes: [String] = []

    func reporter(title: String = "train", total: Int, terminal: Bool, interval: Double = 10, width: Int = 200) -> ProgressReporter {
        ProgressReporter(title: title, total: total, isTerminal: terminal,
                         output: { [unowned self] in self.writes.append($0) },
                         clock: { [unowned self] in self.now },
                         plainInterval: interval, terminalWidth: width)
    }
}

@Suite struct ProgressTests {
    @Test func terminalRedrawsAtMostTenTimesPerSecond() {
        let h = ProgressHarness()
        let p = h.reporter(total: 1000, terminal: true)
        // 1000 updates 1 ms apart: 1 s of work.
        for i in 1...1000 {
            h.now += 0.001
            p.update(done: i, metrics: [("loss", 1)])
        }
        // First update draws, then one redraw per 0.1 s: 10 or 11 (floating-point sums).
        #expect(h.writes.count >= 10 && h.writes.count <= 11)
        #expect(h.writes.allSatisfy { $0.hasPrefix("\r") && $0.hasSuffix("\u{1B}[K") && !$0.contains("\n") })
        #expect(h.writes[0].contains("[--------------------] 1/1000 (0%)"))
    }

    @Test func terminalThrottleBoundary() {
        let h = ProgressHarness()
        let p = h.reporter(total: 10, terminal: true)
        p.update(done: 1)          // draws (first)
        h.now += 0.05; p.update(done: 2)   // too soon
        h.now += 0.04; p.update(done: 3)   // 0.09 s after the draw: too soon
        h.now += 0.02; p.update(done: 4)   // 0.11 s: draws
        #expect(h.writes.count == 2)
        #expect(h.writes[1].contains("[########------------] 4/10 (40%)"))
    }

    @Test func etaArithmetic() {
        let h = ProgressHarness()
        let p = h.reporter(total: 100, terminal: false)
        #expect(p.estimatedRemaining(now: h.now) == nil)
        h.now += 10
        p.update(done: 25)
        #expect(p.estimatedRemaining(now: h.now) == 30)        // 10 s · 75 / 25
        h.now += 30
        p.update(done: 50)
        #expect(p.estimatedRemaining(now: h.now) == 40)        // 40 s · 50 / 50
        #expect(p.elapsed == 40)
        #expect(ProgressReporter.duration(30) == "30.0s")
        #expect(ProgressReporter.duration(125) == "2m05s")
        #expect(ProgressReporter.duration(3723) == "1h02m03s")
        #expect(ProgressReporter.duration(-1) == "--")
    }

    @Test func plainLineFormat() {
        let h = ProgressHarness()
        let p = h.reporter(title: "PE-SVI phase 2", total: 100, terminal: false)
        h.now += 10
        p.update(done: 25, metrics: [("loss", 1.5), ("lr", 0.001)])
        #expect(h.writes == ["PE-SVI phase 2: 25/100 (25%) loss=1.5 lr=0.001 | 2.5 it/s | elapsed 10.0s | eta 30.0s\n"])
    }

    @Test func plainPrintsOnEachTenPercentBracket() {
        let h = ProgressHarness()
        let p = h.reporter(total: 200, terminal: false, interval: 1000)
        for i in 1...200 {
            h.now += 0.01
            p.update(done: i)
        }
        // Lines at 10 %, 20 %, …, 100 %: brackets crossed, never twice in the same one.
        #expect(h.writes.count == 10)
        #expect(h.writes.first?.hasPrefix("train: 20/200 (10%)") == true)
        #expect(h.writes.last?.hasPrefix("train: 200/200 (100%)") == true)
        #expect(h.writes.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") && !$0.contains("[") })
    }

    @Test func plainPrintsAtMostOncePerIntervalBetweenBrackets() {
        let h = ProgressHarness()
        let p = h.reporter(total: 1000, terminal: false, interval: 10)
        // 90 updates 3 s apart (270 s), staying below 10 %: lines only from the interval.
        for i in 1...90 {
            h.now += 3
            p.update(done: i)
        }
        // Due at 12 s, 24 s, … (every 4th update): 270 / 12 = 22 lines.
        #expect(h.writes.count == 22)
        #expect(h.writes[0].hasPrefix("train: 4/1000 (0%)"))
    }

    @Test func finishWritesOneFinalLine() {
        let h = ProgressHarness()
        let p = h.reporter(total: 50, terminal: false)
        h.now += 5
        p.update(done: 50, metrics: [("elbo", -123.25)])
        let before = h.writes.count
        h.now += 1
        p.finish()
        #expect(h.writes.count == before + 1)
        #expect(h.writes.last == "train: 50/50 (100%) elbo=-123.2 | done in 6.0s | 8.33 it/s\n")
        p.finish()
        p.update(done: 50)
        #expect(h.writes.count == before + 1)

        let t = ProgressHarness()
        let q = t.reporter(total: 0, terminal: true)
        q.update(done: 7)
        t.now += 90
        q.finish()
        #expect(t.writes.last == "\rtrain: 7 | done in 1m30s | 0.0778 it/s\u{1B}[K\n")
    }

    @Test func terminalLinesAreCutToWidth() {
        let h = ProgressHarness()
        let p = h.reporter(total: 10, terminal: true, width: 40)
        p.update(done: 3, metrics: [("a very long metric name", 1), ("another", 2)])
        let body = h.writes[0].dropFirst().dropLast(3)  // strip "\r" and "\u{1B}[K"
        #expect(body.count == 40 && body.hasSuffix("…"))
    }
}

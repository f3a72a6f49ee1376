import Foundation

/// Progress of a long phase (training steps, evaluation batches), written to standard error.
///
/// Two modes, chosen by `isTerminal` (by default: whether standard error is a terminal):
/// - **Terminal**: one line redrawn in place (`"\r" + line + "\u{1B}[K"`, no newline) with
///   title, bar, done/total, percentage, metrics, rate, elapsed time and ETA; redrawn at most
///   once per `terminalRefresh` seconds (default 0.1 s, so ≤ 10 redraws a second). The first
///   update always draws.
/// - **Plain** (logs, pipes): the same information without the bar, one line ending in `"\n"`
///   when at least `plainInterval` seconds have passed since the last printed line (or since
///   the start) or when progress has crossed into a new 10 % bracket. So a log gets at most
///   about 10 lines per phase plus one per `plainInterval`.
///
/// `finish()` writes a final line ending in `"\n"` (in terminal mode it overwrites the bar),
/// with the total elapsed time; further calls to `update` or `finish` write nothing.
///
/// ETA = elapsed · (total − done) / done, shown as `--` before the first completed unit.
/// Durations read `45.0s` below a minute, then `2m05s`, `1h02m03s`.
///
/// Everything that touches the outside is injectable for tests: the sink receiving the text
/// (`output`), the clock (`clock`, seconds, monotonic) and the mode (`isTerminal`).
/// Not thread-safe: call it from the thread that runs the phase.
public final class ProgressReporter {
    public let title: String
    public let total: Int
    public let isTerminal: Bool
    /// Minimum seconds between two redraws in terminal mode.
    public let terminalRefresh: Double
    /// Maximum seconds between two lines in plain mode (while updates keep coming).
    public let plainInterval: Double
    /// Terminal lines are cut to this many characters so that `\r` redraws do not wrap.
    public let terminalWidth: Int

    private let output: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var done = 0
    private var metrics: [(String, Double)] = []
    private var lastWrite: Double?
    private var lastDecile = 0
    private var finished = false

    /// - Parameters:
    ///   - title: the phase's name, first on every line.
    ///   - total: the number of units (steps, batches) in the phase; 0 if unknown (no bar,
    ///     percentage or ETA then).
    ///   - isTerminal: the mode (see the type); default `isatty(2)`.
    ///   - output: receives every piece of text; default writes it to standard error.
    ///   - clock: seconds from any fixed origin, non-decreasing; default the monotonic clock.
    ///     Read once here (the start) and once per `update`/`finish`.
    public init(
        title: String, total: Int,
        isTerminal: Bool = ProgressReporter.standardErrorIsTerminal(),
        output: @escaping (String) -> Void = ProgressReporter.writeToStandardError,
        clock: @escaping () -> Double = ProgressReporter.monotonicSeconds,
        terminalRefresh: Double = 0.1, plainInterval: Double = 10,
        terminalWidth: Int = ProgressReporter.defaultTerminalWidth()
    ) {
        precondition(total >= 0, "ProgressReporter: negative total \(total)")
        self.title = title
        self.total = total
        self.isTerminal = isTerminal
        self.output = output
        self.clock = clock
        self.terminalRefresh = terminalRefresh
        self.plainInterval = plainInterval
        self.terminalWidth = max(20, terminalWidth)
        self.start = clock()
    }

    /// Records that `done` units are complete (clamped to 0…total when total > 0), with the
    /// current metrics (shown in the given order, e.g. `[("loss", 1.5)]`), and writes a line
    /// if the mode's throttling allows it.
    public func update(done: Int, metrics: [(String, Double)] = []) {
        guard !finished else { return }
        self.done = total > 0 ? min(max(done, 0), total) : max(done, 0)
        self.metrics = metrics
        let now = clock()
        if isTerminal {
            if let last = lastWrite, now - last < terminalRefresh { return }
            lastWrite = now
            output("\r" + fit(line(now: now, bar: true)) + "\u{1B}[K")
        } else {
            let decile = total > 0 ? self.done * 10 / total : 0
            let due = now - (lastWrite ?? start) >= plainInterval
            guard decile > lastDecile || due else { return }
            lastDecile = max(lastDecile, decile)
            lastWrite = now
            output(line(now: now, bar: false) + "\n")
        }
    }

    /// Writes the final line (ending in a newline) with the total elapsed time. Later calls do nothing.
    public func finish() {
        guard !finished else { return }
        finished = true
        let now = clock()
        var parts = ["\(title): \(countText())"]
        if !metrics.isEmpty { parts[0] += " " + metricsText() }
        parts.append("done in \(Self.duration(now - start))")
        if let r = rate(now: now) { parts.append(r) }
        let text = parts.joined(separator: " | ")
        output(isTerminal ? "\r" + fit(text) + "\u{1B}[K\n" : text + "\n")
    }

    /// Seconds since the reporter was created, by its clock.
    public var elapsed: Double { clock() - start }

    /// Estimated seconds left: elapsed · (total − done) / done; nil while done = 0 or total unknown.
    public func estimatedRemaining(now: Double) -> Double? {
        guard total > 0, done > 0 else { return nil }
        return (now - start) * Double(total - done) / Double(done)
    }

    // MARK: - Formatting

    /// "title: [####------] 25/100 (25%) loss=1.5 | 2.50 it/s | elapsed 10.0s | eta 30.0s"
    func line(now: Double, bar: Bool) -> String {
        var head = "\(title): "
        if bar && total > 0 { head += barText() + " " }
        head += countText()
        if !metrics.isEmpty { head += " " + metricsText() }
        var parts = [head]
        if let r = rate(now: now) { parts.append(r) }
        parts.append("elapsed \(Self.duration(now - start))")
        if total > 0 { parts.append("eta " + (estimatedRemaining(now: now).map(Self.duration) ?? "--")) }
        return parts.joined(separator: " | ")
    }

    private func countText() -> String {
        guard total > 0 else { return "\(done)" }
        return "\(done)/\(total) (\(done * 100 / total)%)"
    }

    private func metricsText() -> String {
        metrics.map { "\($0.0)=\(Self.number($0.1))" }.joined(separator: " ")
    }

    private func barText(width: Int = 20) -> String {
        let filled = total > 0 ? done * width / total : 0
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    private func rate(now: Double) -> String? {
        let t = now - start
        guard t > 0, done > 0 else { return nil }
        return String(format: "%.3g it/s", Double(done) / t)
    }

    private func fit(_ s: String) -> String {
        s.count <= terminalWidth ? s : String(s.prefix(terminalWidth - 1)) + "…"
    }

    /// Metric values: 4 significant digits ("1.235", "0.0001235", "1.235e+06").
    static func number(_ v: Double) -> String { String(format: "%.4g", v) }

    /// "45.0s", "2m05s", "1h02m03s"; "--" for negative or non-finite values.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm%02ds", s / 3600, (s % 3600) / 60, s % 60)
    }

    // MARK: - Defaults

    /// Whether file descriptor 2 is a terminal.
    public static func standardErrorIsTerminal() -> Bool { isatty(2) != 0 }

    /// Writes `text` to standard error, unbuffered.
    public static func writeToStandardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Monotonic seconds (uptime).
    public static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// `$COLUMNS` when set to a number, else 100.
    public static func defaultTerminalWidth() -> Int {
        ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) } ?? 100
    }
}

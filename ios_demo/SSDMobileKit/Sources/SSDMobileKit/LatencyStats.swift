import Foundation

/// Median and p90 of timed runs, defined as ssdmobile/bench.py (and the Kotlin LatencyStats)
/// define them, so the benchmark screen and `ssdmobile bench` report comparable numbers: median of
/// the sorted times (mean of the two middle ones for an even count),
/// p90 = sorted[min(n - 1, round_half_even(0.9 * (n - 1)))].
public struct LatencyStats: Equatable, Sendable {
    public let sorted: [Double]

    public init(_ timesMs: [Double]) throws {
        guard !timesMs.isEmpty else { throw KitError("no timed runs") }
        sorted = timesMs.sorted()
    }

    public var runs: Int { sorted.count }

    public var medianMs: Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    public var p90Ms: Double {
        let i = (0.9 * Double(sorted.count - 1)).rounded(.toNearestOrEven)
        return sorted[Swift.min(sorted.count - 1, Int(i))]
    }

    public var minMs: Double { sorted[0] }

    /// One line for the screen and the log.
    public func summary(_ label: String) -> String {
        "\(label): median \(Self.ms(medianMs)) ms, p90 \(Self.ms(p90Ms)) ms, min \(Self.ms(minMs)) ms over \(runs) runs"
    }

    static func ms(_ v: Double) -> String { String(format: "%.2f", v) }
}

extension LatencyStat {
    /// The device result's {median, p90} of these runs.
    public init(_ s: LatencyStats) {
        self.init(median: s.medianMs, p90: s.p90Ms)
    }
}

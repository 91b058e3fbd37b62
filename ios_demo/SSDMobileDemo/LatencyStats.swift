import Foundation

/// Median and p90 as ssdmobile/bench.py (and the Android app's LatencyStats) define them:
/// median of the sorted times; p90 = sorted[min(n - 1, round_half_even(0.9 * (n - 1)))].
struct LatencyStats {
    let sorted: [Double]

    init(_ timesMs: [Double]) {
        precondition(!timesMs.isEmpty, "no timed runs")
        sorted = timesMs.sorted()
    }

    var runs: Int { sorted.count }
    var medianMs: Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
    var p90Ms: Double {
        let i = (0.9 * Double(sorted.count - 1)).rounded(.toNearestOrEven)
        return sorted[min(sorted.count - 1, Int(i))]
    }
    var minMs: Double { sorted[0] }

    func summary(_ label: String) -> String {
        String(format: "%@: median %.2f ms, p90 %.2f ms, min %.2f ms over %d runs", label, medianMs, p90Ms, minMs, runs)
    }
}

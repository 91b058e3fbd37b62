package org.ssdmobile.postprocess

/**
 * Median and p90 of timed runs, defined as ssdmobile/bench.py defines them, so the app's benchmark
 * screen and `ssdmobile bench` report comparable numbers: median of the sorted times (mean of the
 * two middle ones for an even count), p90 = sorted[min(n - 1, round_half_even(0.9 * (n - 1)))].
 */
class LatencyStats(timesMs: DoubleArray) {
    val sorted: DoubleArray = timesMs.sortedArray()
    val runs: Int get() = sorted.size

    init {
        require(timesMs.isNotEmpty()) { "no timed runs" }
    }

    val medianMs: Double
        get() {
            val n = sorted.size
            return if (n % 2 == 1) sorted[n / 2] else (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }

    val p90Ms: Double
        get() = sorted[Math.min(sorted.size - 1, Math.rint(0.9 * (sorted.size - 1)).toInt())]

    val minMs: Double get() = sorted[0]

    /** One line for the screen and the log. */
    fun summary(label: String): String =
        String.format(java.util.Locale.US, "%s: median %.2f ms, p90 %.2f ms, min %.2f ms over %d runs",
            label, medianMs, p90Ms, minMs, runs)
}

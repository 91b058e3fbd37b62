package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Test

class LatencyStatsTest {
    @Test
    fun sameDefinitionsAsPythonBench() {
        // python: statistics.median([5, 1, 3, 2, 4]) == 3; p90 index round(0.9 * 4) = round(3.6) = 4
        val odd = LatencyStats(doubleArrayOf(5.0, 1.0, 3.0, 2.0, 4.0))
        assertEquals(3.0, odd.medianMs, 0.0)
        assertEquals(5.0, odd.p90Ms, 0.0)
        // 50 runs 1..50: median 25.5; p90 index round(44.1) = 44 -> 45.0
        val fifty = LatencyStats(DoubleArray(50) { (50 - it).toDouble() })
        assertEquals(25.5, fifty.medianMs, 0.0)
        assertEquals(45.0, fifty.p90Ms, 0.0)
        // 6 runs: index 0.9 * 5 = 4.5 rounds half to even (Python's round) -> 4
        assertEquals(5.0, LatencyStats(doubleArrayOf(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)).p90Ms, 0.0)
        assertEquals("m: median 3.00 ms, p90 5.00 ms, min 1.00 ms over 5 runs", odd.summary("m"))
    }
}

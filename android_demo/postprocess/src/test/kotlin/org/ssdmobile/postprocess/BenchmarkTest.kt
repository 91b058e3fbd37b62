package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class BenchmarkTest {
    @Test
    fun settingsFromTheScreenFields() {
        assertEquals(Benchmark.Settings(5, 50, 0), Benchmark.Settings.parse("", "", ""))
        assertEquals(Benchmark.Settings(0, 1, 4), Benchmark.Settings.parse("-2", "0", " 4 "))
        assertEquals(Benchmark.Settings(5, 20, 0), Benchmark.Settings.parse("x", "20", "-1"))
        assertEquals("running: drift check, then 5 warm-up and 50 timed runs ...", Benchmark.startText(Benchmark.Settings()))
    }

    @Test
    fun syntheticFrameIsFixed() {
        val px = Benchmark.syntheticFrame()
        assertEquals(640 * 480, px.size)
        assertEquals(0xFF0000C8.toInt(), px[0])                       // top left: r 0, g 0, block 200
        assertEquals(0xFFFEFEC8.toInt(), px[px.size - 1])              // bottom right: 639*255/640, 479*255/480, block 200
        assertEquals(0xFF0F0028.toInt(), px[40])                       // the next block: 40*255/640, 0, 40
    }

    @Test
    fun timesEachRun() {
        var now = 0L
        var calls = 0
        val t = Benchmark.timeRuns(3, { now }) { calls++; now += 1_500_000L * calls }
        assertEquals(3, calls)
        assertEquals(listOf(1.5, 3.0, 4.5), t.toList())
    }

    @Test
    fun screenAndLogLines() {
        val r = BenchResultTest.sample(BenchResultTest.DRIFT, "ab".repeat(32))
        val f = LatencyStats(doubleArrayOf(12.5, 11.0, 13.25))
        val p = LatencyStats(doubleArrayOf(2.0, 1.5))
        val e = LatencyStats(doubleArrayOf(24.5, 15.75))
        val text = Benchmark.screenText(r, f, p, e, "/sdcard/results/${r.fileName()}").split("\n")
        assertEquals(r.artifact, text[0])
        assertEquals("Google Pixel 8 (Tensor G3, Android 14 (API 34))", text[1])
        assertEquals("ExecuTorch 1.5.1, threads: 4", text[2])
        assertEquals("drift vs float: PASS: max raw difference 7.63e-05 (within tolerance), detections match on 4/4 " +
            "images (at least 4 needed)", text[4])
        assertEquals("5 warm-up, 50 timed runs", text[6])
        assertEquals("post-processing (decode + NMS in app): median 1.75 ms, p90 2.00 ms, min 1.50 ms over 2 runs", text[8])
        assertEquals("end-to-end 640x480: median 20.13 ms, p90 24.50 ms, min 15.75 ms over 2 runs", text[9])
        assertTrue(text.contains("saved ${r.fileName()}:"))
        val noDrift = BenchResultTest.sample(null, "ab".repeat(32))
        assertTrue(Benchmark.screenText(noDrift, f, p, e, "x").contains("drift vs float: no golden data"))
        val log = Benchmark.logLines(r, f, e)
        assertEquals(4, log.size)
        assertEquals(r.toJsonText(), log.last())
        assertEquals(3, Benchmark.logLines(noDrift, f, e).size)
    }
}

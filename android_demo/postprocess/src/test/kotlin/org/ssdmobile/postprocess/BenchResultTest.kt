package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * The device result (the generated DeviceResult, built by BenchResult.of as the benchmark screen
 * builds it): a sample goes to -Dresults.out (a file, and the line as `adb logcat -s SSDMobileBench`
 * prints it), where tests/test_android_postprocess.py reads it with ssdmobile/device.py and checks
 * it against the Python mirror of this writer (tests/device_results.py).
 */
class BenchResultTest {
    companion object {
        val DRIFT = DriftResult(4, 7.62939453125E-5, true, 0, 4, 4, true)

        /** The values of tests/device_results.py SAMPLE (keep the two in step). */
        fun sample(drift: DriftResult?, sha256: String): DeviceResult = BenchResult.of(
            sidecar = Samples.sidecar().copy(model = "ssdlite_mobilenet_v2_person", precision = "fp32"),
            artifact = "ssdlite_mobilenet_v2_person_executorch_fp32.pte",
            sha256 = sha256,
            device = DeviceInfo("Google Pixel 8", BenchResult.soc(34) { "Tensor G3" }, BenchResult.androidOs("14", 34)),
            runtime = BenchResult.executorch("1.5.1", 4),
            warmup = 5,
            runs = 50,
            forward = LatencyStats(doubleArrayOf(12.5, 11.0, 13.25)),      // median 12.5, p90 13.25
            postprocess = LatencyStats(doubleArrayOf(2.0, 1.5)),           // 1.75, 2.0
            endToEnd = LatencyStats(doubleArrayOf(24.5, 15.75)),           // 20.125, 24.5
            drift = drift,
            time = "2025-01-02T03:04:05.678Z")
    }

    private fun shaOfDriftArtifact(): String? {
        val dir = System.getProperty("drift.dir") ?: return null
        val golden = File(dir, "person/ssdlite_mobilenet_v2_person_executorch_fp32.golden/golden.json")
        return if (golden.isFile) ArtifactGolden.parse(golden.readText(), golden.path).artifactSha256 else null
    }

    @Test
    fun oneCompactLineWithEveryField() {
        val r = sample(DRIFT, "ab".repeat(32))
        val json = r.toJsonText()
        assertFalse(json.contains("\n"))
        assertTrue("logcat cuts long lines", json.length < BenchResult.MAX_LINE)
        assertTrue(json.startsWith("{\"format\":\"ssdmobile-device-result\",\"version\":1,\"app\":\"android\""))
        val tree = JsonRead.parse(json, "result").asJsonObject
        assertEquals(listOf("format", "version", "app", "artifact", "artifact_sha256", "model", "precision", "nms_in_graph",
            "device", "runtime", "warmup", "runs", "latency_ms", "drift", "time"), tree.keySet().toList())
        assertEquals(12.5, tree.getAsJsonObject("latency_ms").getAsJsonObject("forward").get("median").asDouble, 0.0)
        assertEquals(listOf("forward", "postprocess", "end_to_end"), tree.getAsJsonObject("latency_ms").keySet().toList())
        assertEquals(listOf("images", "max_abs_diff_raw", "raw_within_tolerance", "non_finite", "detections_matched",
            "min_images_matched", "passed"), tree.getAsJsonObject("drift").keySet().toList())
        assertEquals("result_ssdlite_mobilenet_v2_person_executorch_fp32_20250102T030405Z.json", r.fileName())
        // no drift check: "drift": null, written, not left out
        assertTrue(sample(null, "ab".repeat(32)).toJsonText().contains("\"drift\":null"))
        // what the app writes, the generated reader reads back
        assertEquals(r, DeviceResult.parse(json, "result"))
    }

    @Test
    fun deviceFields() {
        assertEquals("unknown", BenchResult.soc(30) { throw AssertionError("Build.SOC_MODEL is API 31+") })
        assertEquals("Android 11 (API 30)", BenchResult.androidOs("11", 30))
        assertEquals(RuntimeInfo("ExecuTorch", "1.5.1", 0, "XNNPACK"), BenchResult.executorch("1.5.1", 0))
        assertEquals(LatencyStat(12.5, 13.25), LatencyStats(doubleArrayOf(12.5, 11.0, 13.25)).toStat())
    }

    @Test
    fun writesSamplesForThePythonReader() {
        val out = System.getProperty("results.out") ?: return  // only under test.sh
        val dir = File(out)
        dir.mkdirs()
        // the true person program's drift check (DriftCheckTest's case), on its real sha256
        val sha = shaOfDriftArtifact() ?: "ab".repeat(32)
        val withDrift = sample(DRIFT, sha)
        File(dir, withDrift.fileName()).writeText(withDrift.toJsonText())
        val noDrift = sample(null, sha)
        // what `adb logcat -s SSDMobileBench` prints (threadtime format), with the app's other lines around it
        File(dir, "logcat.txt").writeText(
            "--------- beginning of main\n" +
            "01-02 03:04:05.600  1234  1301 I ${BenchResult.LOG_TAG}: ${noDrift.artifact} forward: median 12.50 ms, p90 13.25 ms\n" +
            "01-02 03:04:05.679  1234  1301 I ${BenchResult.LOG_TAG}: ${noDrift.toJsonText()}\n")
    }
}

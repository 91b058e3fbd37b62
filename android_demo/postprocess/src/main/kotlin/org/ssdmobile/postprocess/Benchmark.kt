package org.ssdmobile.postprocess

/**
 * The benchmark screen's logic, free of Android: its settings, the fixed test frame, timing
 * loops, and the lines it shows and logs. The app calls ExecuTorch and draws; the numbers and
 * the text come from here.
 */
object Benchmark {
    /** The synthetic camera frame end-to-end runs preprocess */
    const val FRAME_WIDTH = 640
    const val FRAME_HEIGHT = 480

    /** What the screen's fields ask for; blank or unreadable fields take the defaults. */
    data class Settings(val warmup: Int = 5, val runs: Int = 50, val threads: Int = 0) {
        companion object {
            fun parse(warmup: String, runs: String, threads: String): Settings {
                val d = Settings()
                return Settings(
                    warmup = warmup.trim().toIntOrNull()?.coerceAtLeast(0) ?: d.warmup,
                    runs = runs.trim().toIntOrNull()?.coerceAtLeast(1) ?: d.runs,
                    threads = threads.trim().toIntOrNull()?.coerceAtLeast(0) ?: d.threads)
            }
        }
    }

    /** A fixed, deterministic test frame (gradients and blocks) as opaque ARGB pixels, so runs are comparable. */
    fun syntheticFrame(width: Int = FRAME_WIDTH, height: Int = FRAME_HEIGHT): IntArray = IntArray(width * height) { i ->
        val x = i % width
        val y = i / width
        val b = if ((x / 40 + y / 40) % 2 == 0) 200 else 40
        (0xFF shl 24) or (((x * 255) / width) shl 16) or (((y * 255) / height) shl 8) or b
    }

    /** `runs` timed calls of `body`, in ms, by `clockNanos` (SystemClock.elapsedRealtimeNanos on Android). */
    fun timeRuns(runs: Int, clockNanos: () -> Long, body: () -> Unit): DoubleArray {
        val out = DoubleArray(runs)
        for (i in 0 until runs) {
            val t0 = clockNanos()
            body()
            out[i] = (clockNanos() - t0) / 1e6
        }
        return out
    }

    fun startText(s: Settings): String = "running: drift check, then ${s.warmup} warm-up and ${s.runs} timed runs ..."

    fun driftText(drift: DriftResult?): String =
        "drift vs float: " + (drift?.summary() ?: "no golden data (export with --golden N, bundle again)")

    /** What the app logs with tag [BenchResult.LOG_TAG]; the last line is the result itself. */
    fun logLines(result: DeviceResult, forward: LatencyStats, endToEnd: LatencyStats): List<String> {
        val lines = ArrayList<String>()
        lines.add(forward.summary("${result.artifact} forward"))
        lines.add(endToEnd.summary("${result.artifact} end-to-end"))
        val drift = result.drift
        if (drift != null) lines.add("${result.artifact} drift: ${drift.summary()}")
        lines.add(result.toJsonText())
        return lines
    }

    /** The screen after a run; `savedPath` where the result file went. */
    fun screenText(result: DeviceResult, forward: LatencyStats, postprocess: LatencyStats, endToEnd: LatencyStats,
                   savedPath: String): String {
        val threads = result.runtime.threads
        val post = "post-processing" + if (result.nmsInGraph) " (NMS in graph)" else " (decode + NMS in app)"
        return listOf(
            result.artifact,
            "${result.device.name} (${result.device.soc}, ${result.device.os})",
            "${result.runtime.name} ${result.runtime.version}, threads: ${if (threads == 0) "default" else threads.toString()}",
            "",
            driftText(result.drift),
            "",
            "${result.warmup} warm-up, ${result.runs} timed runs",
            forward.summary("forward"),
            postprocess.summary(post),
            endToEnd.summary("end-to-end ${FRAME_WIDTH}x$FRAME_HEIGHT"),
            "",
            "saved ${result.fileName()}:",
            "  adb pull $savedPath",
            "logcat -s ${BenchResult.LOG_TAG} shows the same JSON line; `ssdmobile device-report` reads either"
        ).joinToString("\n")
    }
}

package org.ssdmobile.demo

import android.graphics.Bitmap
import android.graphics.Color
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import android.widget.Toast
import androidx.appcompat.app.AppCompatActivity
import org.ssdmobile.postprocess.BenchResult
import org.ssdmobile.postprocess.DeviceInfo
import org.ssdmobile.postprocess.DriftResult
import org.ssdmobile.postprocess.LatencyMs
import org.ssdmobile.postprocess.LatencyStats
import org.ssdmobile.postprocess.Postprocessor
import org.ssdmobile.postprocess.RuntimeInfo
import org.ssdmobile.postprocess.Stat
import java.io.File
import java.time.Instant
import java.util.concurrent.Executors

/**
 * On-device drift and latency, in that order:
 *   drift       the artifact's golden data (`ssdmobile export --golden N`, bundled beside it) run
 *               through ExecuTorch here, compared with the float model's outputs (DriftCheck:
 *               max raw-output difference, detection match, PASS/FAIL by the golden tolerances)
 *   forward     the artifact alone on a fixed preprocessed input (compare with `ssdmobile bench`)
 *   post-processing, end-to-end   decode + NMS; preprocess + forward + post-processing on a
 *               fixed synthetic 640x480 frame
 * median and p90 as ssdmobile/bench.py computes them (LatencyStats). One result per run
 * (BenchResult, the format `ssdmobile device-report` reads) is logged as one line with tag
 * SSDMobileBench and saved under the app's external files (results/), for `adb pull`.
 */
class BenchmarkActivity : AppCompatActivity() {
    private var detector: EtDetector? = null
    private lateinit var asset: String
    private val worker = Executors.newSingleThreadExecutor()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_benchmark)
        asset = intent.getStringExtra(MainActivity.EXTRA_MODEL)!!
        val result = findViewById<TextView>(R.id.result)
        val button = findViewById<Button>(R.id.run)
        button.setOnClickListener {
            val warmup = findViewById<EditText>(R.id.warmup).text.toString().toIntOrNull()?.coerceAtLeast(0) ?: 5
            val runs = findViewById<EditText>(R.id.runs).text.toString().toIntOrNull()?.coerceAtLeast(1) ?: 50
            val threads = findViewById<EditText>(R.id.threads).text.toString().toIntOrNull()?.coerceAtLeast(0) ?: 0
            button.isEnabled = false
            result.text = "running: drift check, then $warmup warm-up and $runs timed runs ..."
            worker.execute {
                val text = try {
                    benchmark(warmup, runs, threads)
                } catch (e: Exception) {
                    "failed: ${e.message}"
                }
                runOnUiThread {
                    result.text = text
                    button.isEnabled = true
                }
            }
        }
    }

    /** The model, loaded with `threads` (0: ExecuTorch's default); reloaded when that changes. */
    private fun detector(threads: Int): EtDetector {
        detector?.let { if (it.threads == threads) return it else it.close() }
        return ModelStore.open(this, asset, threads).also { detector = it }
    }

    private fun drift(detector: EtDetector): DriftResult? {
        val check = ModelStore.drift(this, asset, detector.sidecar) ?: return null
        val outputs = (0 until check.images).map { detector.forward(check.input(it)) }
        return check.check(outputs)
    }

    private fun benchmark(warmup: Int, runs: Int, threads: Int): String {
        val detector = detector(threads)
        val drift = drift(detector)  // first: a runtime that computes something else makes the timings moot

        val frame = syntheticFrame(640, 480)
        val input = detector.preprocess(frame)
        val post = Postprocessor(detector.sidecar)
        repeat(warmup) { detector.detect(frame) }
        val forward = DoubleArray(runs)
        for (i in 0 until runs) {
            val t0 = SystemClock.elapsedRealtimeNanos()
            detector.forward(input)
            forward[i] = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        }
        val outputs = detector.forward(input)
        val postMs = DoubleArray(runs)
        for (i in 0 until runs) {
            val t0 = SystemClock.elapsedRealtimeNanos()
            post.run(outputs)
            postMs[i] = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        }
        val endToEnd = DoubleArray(runs)
        for (i in 0 until runs) {
            val t0 = SystemClock.elapsedRealtimeNanos()
            detector.detect(frame)
            endToEnd[i] = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        }
        val f = LatencyStats(forward)
        val p = LatencyStats(postMs)
        val e = LatencyStats(endToEnd)
        val s = detector.sidecar
        val result = BenchResult(
            app = "android", artifact = asset, artifactSha256 = ModelStore.sha256(ModelStore.file(this, asset)),
            model = s.model, precision = s.precision, nmsInGraph = s.nms.inGraph,
            device = DeviceInfo("${Build.MANUFACTURER} ${Build.MODEL}", socModel(),
                "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})"),
            runtime = RuntimeInfo("ExecuTorch", BuildConfig.EXECUTORCH_VERSION, threads, "XNNPACK"),
            warmup = warmup, runs = runs, latencyMs = LatencyMs(Stat.of(f), Stat.of(p), Stat.of(e)),
            drift = drift, time = Instant.now().toString())
        val json = result.toJson()
        Log.i(TAG, f.summary("$asset forward"))
        Log.i(TAG, e.summary("$asset end-to-end"))
        drift?.let { Log.i(TAG, "$asset drift: ${it.summary()}") }
        Log.i(TAG, json)
        val saved = File(getExternalFilesDir("results"), result.fileName()).also { it.writeText(json) }
        return buildString {
            appendLine(asset)
            appendLine("${result.device.name} (${result.device.soc}, ${result.device.os})")
            appendLine("ExecuTorch ${result.runtime.version}, threads: ${if (threads == 0) "default" else threads.toString()}")
            appendLine()
            appendLine("drift vs float: " + (drift?.summary() ?: "no golden data (export with --golden N, bundle again)"))
            appendLine()
            appendLine("$warmup warm-up, $runs timed runs")
            appendLine(f.summary("forward"))
            appendLine(p.summary("post-processing" + if (s.nms.inGraph) " (NMS in graph)" else " (decode + NMS in app)"))
            appendLine(e.summary("end-to-end 640x480"))
            appendLine()
            appendLine("saved ${saved.name}:")
            appendLine("  adb pull ${saved.absolutePath}")
            append("logcat -s $TAG shows the same JSON line; `ssdmobile device-report` reads either")
        }
    }

    /** A fixed, deterministic test frame (gradients and blocks), so runs are comparable. */
    private fun syntheticFrame(w: Int, h: Int): Bitmap {
        val pixels = IntArray(w * h) { i ->
            val x = i % w
            val y = i / w
            Color.rgb((x * 255) / w, (y * 255) / h, if ((x / 40 + y / 40) % 2 == 0) 200 else 40)
        }
        return Bitmap.createBitmap(pixels, w, h, Bitmap.Config.ARGB_8888)
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { detector?.close() }
        worker.shutdown()
    }

    companion object {
        const val TAG = BenchResult.LOG_TAG
        private fun socModel(): String = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else "unknown"
    }
}

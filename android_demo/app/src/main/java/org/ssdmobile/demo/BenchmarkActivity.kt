package org.ssdmobile.demo

import android.graphics.Bitmap
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import org.ssdmobile.postprocess.BenchResult
import org.ssdmobile.postprocess.Benchmark
import org.ssdmobile.postprocess.DeviceInfo
import org.ssdmobile.postprocess.DriftResult
import org.ssdmobile.postprocess.LatencyStats
import org.ssdmobile.postprocess.Postprocessor
import org.ssdmobile.postprocess.fileName
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
 * median and p90 as ssdmobile/bench.py computes them (LatencyStats). One result per run (the
 * generated DeviceResult, built by BenchResult.of: the format `ssdmobile device-report` reads) is
 * logged as one line with tag SSDMobileBench and saved under the app's external files (results/),
 * for `adb pull`. The settings, the frame, the result and every line shown are Benchmark and
 * BenchResult (postprocess, unit-tested); this screen runs ExecuTorch, reads the clock and Build.
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
            val settings = Benchmark.Settings.parse(findViewById<EditText>(R.id.warmup).text.toString(),
                findViewById<EditText>(R.id.runs).text.toString(), findViewById<EditText>(R.id.threads).text.toString())
            button.isEnabled = false
            result.text = Benchmark.startText(settings)
            worker.execute {
                val text = try {
                    benchmark(settings)
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

    private fun benchmark(settings: Benchmark.Settings): String {
        val detector = detector(settings.threads)
        val drift = drift(detector)  // first: a runtime that computes something else makes the timings moot

        val frame = Bitmap.createBitmap(Benchmark.syntheticFrame(), Benchmark.FRAME_WIDTH, Benchmark.FRAME_HEIGHT,
            Bitmap.Config.ARGB_8888)
        val input = detector.preprocess(frame)
        val post = Postprocessor(detector.sidecar)
        repeat(settings.warmup) { detector.detect(frame) }
        val clock = { SystemClock.elapsedRealtimeNanos() }
        val forward = LatencyStats(Benchmark.timeRuns(settings.runs, clock) { detector.forward(input) })
        val outputs = detector.forward(input)
        val postprocess = LatencyStats(Benchmark.timeRuns(settings.runs, clock) { post.run(outputs) })
        val endToEnd = LatencyStats(Benchmark.timeRuns(settings.runs, clock) { detector.detect(frame) })

        val result = BenchResult.of(
            sidecar = detector.sidecar, artifact = asset, sha256 = ModelStore.sha256(ModelStore.file(this, asset)),
            device = DeviceInfo("${Build.MANUFACTURER} ${Build.MODEL}", BenchResult.soc(Build.VERSION.SDK_INT) { socModel() },
                BenchResult.androidOs(Build.VERSION.RELEASE, Build.VERSION.SDK_INT)),
            runtime = BenchResult.executorch(BuildConfig.EXECUTORCH_VERSION, settings.threads),
            warmup = settings.warmup, runs = settings.runs, forward = forward, postprocess = postprocess,
            endToEnd = endToEnd, drift = drift, time = Instant.now().toString())
        for (line in Benchmark.logLines(result, forward, endToEnd)) Log.i(TAG, line)
        val saved = File(getExternalFilesDir("results"), result.fileName())
        saved.writeText(result.toJsonText())
        return Benchmark.screenText(result, forward, postprocess, endToEnd, saved.absolutePath)
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { detector?.close() }
        worker.shutdown()
    }

    companion object {
        const val TAG = BenchResult.LOG_TAG

        /** Build.SOC_MODEL: API 31+ only (BenchResult.soc asks for it only there). */
        private fun socModel(): String = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else "unknown"
    }
}

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
import com.google.gson.Gson
import org.ssdmobile.postprocess.LatencyStats
import org.ssdmobile.postprocess.Postprocessor
import java.util.concurrent.Executors

/**
 * On-device latency: warm-up runs, then N timed runs of
 *   forward     the artifact alone on a fixed preprocessed input (compare with `ssdmobile bench`)
 *   end-to-end  preprocess + forward + post-processing on a fixed synthetic camera-sized frame
 * median and p90 as ssdmobile/bench.py computes them (LatencyStats), shown and written to logcat
 * (tag SSDMobileBench; one JSON line per run of the screen).
 */
class BenchmarkActivity : AppCompatActivity() {
    private lateinit var detector: EtDetector
    private lateinit var asset: String
    private val worker = Executors.newSingleThreadExecutor()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_benchmark)
        asset = intent.getStringExtra(MainActivity.EXTRA_MODEL)!!
        try {
            detector = ModelStore.open(this, asset)
        } catch (e: Exception) {
            Toast.makeText(this, "cannot load the model: ${e.message}", Toast.LENGTH_LONG).show()
            finish()
            return
        }
        val result = findViewById<TextView>(R.id.result)
        val button = findViewById<Button>(R.id.run)
        button.setOnClickListener {
            val warmup = findViewById<EditText>(R.id.warmup).text.toString().toIntOrNull()?.coerceAtLeast(0) ?: 5
            val runs = findViewById<EditText>(R.id.runs).text.toString().toIntOrNull()?.coerceAtLeast(1) ?: 50
            button.isEnabled = false
            result.text = "running: $warmup warm-up, $runs timed runs ..."
            worker.execute {
                val text = try {
                    benchmark(warmup, runs)
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

    private fun benchmark(warmup: Int, runs: Int): String {
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
        val device = "${Build.MANUFACTURER} ${Build.MODEL} (${socModel()}, Android ${Build.VERSION.RELEASE})"
        // Gson escapes what string templates would not (a quote in a device name)
        val json = Gson().toJson(linkedMapOf(
            "artifact" to asset, "model" to s.model, "precision" to s.precision, "nms_in_graph" to s.nms.inGraph,
            "device" to device, "warmup" to warmup, "runs" to runs,
            "forward_median_ms" to f.medianMs, "forward_p90_ms" to f.p90Ms, "postprocess_median_ms" to p.medianMs,
            "end_to_end_median_ms" to e.medianMs, "end_to_end_p90_ms" to e.p90Ms))
        Log.i(TAG, f.summary("$asset forward"))
        Log.i(TAG, e.summary("$asset end-to-end"))
        Log.i(TAG, json)
        return buildString {
            appendLine(asset)
            appendLine("$device, ExecuTorch default threads")
            appendLine("$warmup warm-up, $runs timed runs")
            appendLine()
            appendLine(f.summary("forward"))
            appendLine(p.summary("post-processing" + if (s.nms.inGraph) " (NMS in graph)" else " (decode + NMS in app)"))
            appendLine(e.summary("end-to-end 640x480"))
            appendLine()
            append("logcat -s $TAG shows the same numbers and a JSON line")
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
        if (::detector.isInitialized) worker.execute { detector.close() }
        worker.shutdown()
    }

    companion object {
        const val TAG = "SSDMobileBench"
        private fun socModel(): String = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else "SoC unknown"
    }
}

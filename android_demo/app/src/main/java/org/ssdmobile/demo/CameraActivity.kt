package org.ssdmobile.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.util.Log
import android.widget.SeekBar
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.AspectRatio
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import org.ssdmobile.postprocess.Overlay
import org.ssdmobile.postprocess.ScaleMode
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * CameraX preview with live detections drawn over it. Preview and analysis use the same 4:3
 * aspect ratio, so the analysed frame is the previewed frame; PreviewView's default FILL_CENTER
 * is ScaleMode.CROP in the overlay mapping.
 */
class CameraActivity : AppCompatActivity() {
    private lateinit var detector: EtDetector
    private lateinit var overlay: OverlayView
    private lateinit var status: TextView
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else {
            Toast.makeText(this, R.string.camera_denied, Toast.LENGTH_LONG).show()
            finish()
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_camera)
        overlay = findViewById(R.id.overlay)
        overlay.mode = ScaleMode.CROP
        status = findViewById(R.id.status)
        bindMinScore(findViewById(R.id.min_score), overlay, status)
        try {
            detector = ModelStore.open(this, intent.getStringExtra(MainActivity.EXTRA_MODEL)!!)
        } catch (e: Exception) {
            Toast.makeText(this, "cannot load the model: ${e.message}", Toast.LENGTH_LONG).show()
            finish()
            return
        }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED)
            startCamera() else askCamera.launch(Manifest.permission.CAMERA)
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val ratio = ResolutionSelector.Builder()
                .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY).build()
            val preview = Preview.Builder().setResolutionSelector(ratio).build()
            preview.setSurfaceProvider(findViewById<PreviewView>(R.id.preview).surfaceProvider)
            val analysis = ImageAnalysis.Builder()
                .setResolutionSelector(ratio)
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val upright = rotate(it.toBitmap(), it.imageInfo.rotationDegrees)
            val r = detector.detect(upright)
            val line = r.cameraStatus(overlay.minScore)
            runOnUiThread {
                overlay.show(r.detections, detector.sidecar, r.width, r.height)
                status.text = line
            }
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        // close after any queued inference, on the thread that runs them
        if (::detector.isInitialized) analysisExecutor.execute { detector.close() }
        analysisExecutor.shutdown()
    }

    companion object {
        fun rotate(bitmap: Bitmap, degrees: Int): Bitmap {
            if (degrees == 0) return bitmap
            val m = Matrix().apply { postRotate(degrees.toFloat()) }
            return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
        }

        /** A display filter, not a model setting: NMS already applied the sidecar's score_thresh. */
        fun bindMinScore(bar: SeekBar, overlay: OverlayView, label: TextView) {
            bar.progress = Overlay.progress(overlay.minScore)
            bar.setOnSeekBarChangeListener(object : SeekBar.OnSeekBarChangeListener {
                override fun onProgressChanged(s: SeekBar?, progress: Int, fromUser: Boolean) {
                    overlay.minScore = Overlay.minScore(progress)
                    label.text = label.context.getString(R.string.min_score, overlay.minScore)
                }

                override fun onStartTrackingTouch(s: SeekBar?) {}
                override fun onStopTrackingTouch(s: SeekBar?) {}
            })
            Log.i(TAG, "display threshold ${overlay.minScore}")
        }

        const val TAG = "SSDMobileDemo"
    }
}

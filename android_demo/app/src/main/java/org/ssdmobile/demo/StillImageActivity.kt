package org.ssdmobile.demo

import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.net.Uri
import android.os.Bundle
import android.util.Log
import android.widget.Button
import android.widget.ImageView
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import org.ssdmobile.postprocess.ScaleMode
import java.util.concurrent.Executors

/** Pick a photo, run the detector once, draw the detections over the image (fitCenter = ScaleMode.FIT). */
class StillImageActivity : AppCompatActivity() {
    private lateinit var detector: EtDetector
    private lateinit var overlay: OverlayView
    private lateinit var status: TextView
    private lateinit var image: ImageView
    private val worker = Executors.newSingleThreadExecutor()

    private val pick = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) run(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_still)
        overlay = findViewById(R.id.overlay)
        overlay.mode = ScaleMode.FIT
        status = findViewById(R.id.status)
        image = findViewById(R.id.image)
        CameraActivity.bindMinScore(findViewById(R.id.min_score), overlay, status)
        try {
            detector = ModelStore.open(this, intent.getStringExtra(MainActivity.EXTRA_MODEL)!!)
        } catch (e: Exception) {
            Toast.makeText(this, "cannot load the model: ${e.message}", Toast.LENGTH_LONG).show()
            finish()
            return
        }
        findViewById<Button>(R.id.pick).setOnClickListener {
            pick.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
    }

    private fun run(uri: Uri) {
        worker.execute {
            try {
                // ImageDecoder applies the EXIF orientation, as ssdmobile's load_image does
                val bitmap = ImageDecoder.decodeBitmap(ImageDecoder.createSource(contentResolver, uri)) { d, _, _ ->
                    d.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
                }.copy(Bitmap.Config.ARGB_8888, false)
                val r = detector.detect(bitmap)
                val line = r.stillStatus()
                Log.i(CameraActivity.TAG, line)
                runOnUiThread {
                    image.setImageBitmap(bitmap)
                    overlay.show(r.detections, detector.sidecar, r.width, r.height)
                    status.text = line
                }
            } catch (e: Exception) {
                runOnUiThread { status.text = "failed: ${e.message}" }
            }
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        // close after any queued inference, on the thread that runs them
        if (::detector.isInitialized) worker.execute { detector.close() }
        worker.shutdown()
    }
}

package org.ssdmobile.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import org.ssdmobile.postprocess.Detection
import org.ssdmobile.postprocess.PreviewMapping
import org.ssdmobile.postprocess.ScaleMode
import org.ssdmobile.postprocess.Sidecar

/** Boxes and labels over a preview or image view; coordinates mapped by PreviewMapping (unit-tested). */
class OverlayView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var detections: List<Detection> = emptyList()
    private var sidecar: Sidecar? = null
    private var srcWidth = 1
    private var srcHeight = 1
    var mode = ScaleMode.CROP
    var mirror = false
    var minScore = 0.5f
        set(value) { field = value; invalidate() }

    private val density = resources.displayMetrics.density
    private val box = Paint().apply { style = Paint.Style.STROKE; strokeWidth = 2.5f * density; isAntiAlias = true }
    private val text = Paint().apply { color = Color.WHITE; textSize = 13f * density; isAntiAlias = true }
    private val textBg = Paint().apply { style = Paint.Style.FILL }
    private val palette = intArrayOf(0xFF00C853.toInt(), 0xFF2962FF.toInt(), 0xFFFF6D00.toInt(),
        0xFFD50000.toInt(), 0xFFAA00FF.toInt(), 0xFF00B8D4.toInt())

    /** srcWidth/srcHeight: the (upright) image the detections were made on. */
    fun show(detections: List<Detection>, sidecar: Sidecar, srcWidth: Int, srcHeight: Int) {
        this.detections = detections
        this.sidecar = sidecar
        this.srcWidth = srcWidth
        this.srcHeight = srcHeight
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val s = sidecar ?: return
        if (width == 0 || height == 0) return
        for (d in detections) {
            if (d.score < minScore) continue
            val r = PreviewMapping.toView(d, srcWidth, srcHeight, width, height, mode, mirror)
            val color = palette[d.label % palette.size]
            box.color = color
            textBg.color = color
            canvas.drawRect(r.left, r.top, r.right, r.bottom, box)
            val label = "${s.label(d.label)} ${"%.2f".format(d.score)}"
            val tw = text.measureText(label)
            val th = text.textSize
            val top = if (r.top - th - 4 * density >= 0) r.top - th - 4 * density else r.top
            canvas.drawRect(r.left, top, r.left + tw + 8 * density, top + th + 4 * density, textBg)
            canvas.drawText(label, r.left + 4 * density, top + th, text)
        }
    }
}

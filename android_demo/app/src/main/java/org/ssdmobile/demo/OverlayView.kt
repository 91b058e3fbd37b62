package org.ssdmobile.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import org.ssdmobile.postprocess.Detection
import org.ssdmobile.postprocess.Overlay
import org.ssdmobile.postprocess.PreviewMapping
import org.ssdmobile.postprocess.ScaleMode
import org.ssdmobile.postprocess.Sidecar

/**
 * Boxes and labels over a preview or image view: coordinates by PreviewMapping, which detections,
 * their captions, colors and caption places by Overlay (both in postprocess, unit-tested).
 */
class OverlayView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var detections: List<Detection> = emptyList()
    private var sidecar: Sidecar? = null
    private var srcWidth = 1
    private var srcHeight = 1
    var mode = ScaleMode.CROP
    var mirror = false
    var minScore = Overlay.DEFAULT_MIN_SCORE
        set(value) { field = value; invalidate() }

    private val density = resources.displayMetrics.density
    private val box = Paint().apply { style = Paint.Style.STROKE; strokeWidth = 2.5f * density; isAntiAlias = true }
    private val text = Paint().apply { color = Color.WHITE; textSize = 13f * density; isAntiAlias = true }
    private val textBg = Paint().apply { style = Paint.Style.FILL }

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
        val pad = 4 * density
        for (d in Overlay.shown(detections, minScore)) {
            val r = PreviewMapping.toView(d, srcWidth, srcHeight, width, height, mode, mirror)
            val color = Overlay.color(d.label)
            box.color = color
            textBg.color = color
            canvas.drawRect(r.left, r.top, r.right, r.bottom, box)
            val label = Overlay.caption(s, d)
            val tw = text.measureText(label)
            val th = text.textSize
            val top = Overlay.captionTop(r.top, th, pad)
            canvas.drawRect(r.left, top, r.left + tw + 2 * pad, top + th + pad, textBg)
            canvas.drawText(label, r.left + pad, top + th, text)
        }
    }
}

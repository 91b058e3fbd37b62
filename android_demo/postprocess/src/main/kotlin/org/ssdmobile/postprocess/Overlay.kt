package org.ssdmobile.postprocess

import java.util.Locale

/**
 * What the overlay over a preview or image draws, free of Android: which detections, their
 * caption and color, where the caption goes. Coordinates: [PreviewMapping].
 */
object Overlay {
    /** The display filter's start value; NMS already applied the sidecar's score_thresh. */
    const val DEFAULT_MIN_SCORE = 0.5f

    /** Box colors (opaque ARGB), one per label id, repeating. */
    val PALETTE: IntArray = intArrayOf(0xFF00C853.toInt(), 0xFF2962FF.toInt(), 0xFFFF6D00.toInt(),
        0xFFD50000.toInt(), 0xFFAA00FF.toInt(), 0xFF00B8D4.toInt())

    fun color(label: Int): Int = PALETTE[Math.floorMod(label, PALETTE.size)]

    /** "person 0.87" */
    fun caption(sidecar: Sidecar, d: Detection): String =
        sidecar.label(d.label) + " " + String.format(Locale.US, "%.2f", d.score)

    /** The detections the display filter lets through. */
    fun shown(detections: List<Detection>, minScore: Float): List<Detection> = detections.filter { it.score >= minScore }

    /** Top of the caption's background: above the box, or inside it when the box touches the view's top. */
    fun captionTop(boxTop: Float, textHeight: Float, padding: Float): Float =
        if (boxTop - textHeight - padding >= 0f) boxTop - textHeight - padding else boxTop

    /** The score slider (0..100) and the display filter. */
    fun minScore(progress: Int): Float = progress / 100f
    fun progress(minScore: Float): Int = Math.round(minScore * 100f)
}

/** One frame through the detector: detections, the time of each stage, the (upright) image size. */
class FrameResult(val detections: List<Detection>, val preprocessMs: Double, val forwardMs: Double,
                  val postprocessMs: Double, val width: Int, val height: Int) {
    /** The camera screen's status line. */
    fun cameraStatus(minScore: Float): String = String.format(Locale.US,
        "%d shown / %d | pre %.1f  forward %.1f  post %.1f ms",
        Overlay.shown(detections, minScore).size, detections.size, preprocessMs, forwardMs, postprocessMs)

    /** The still-image screen's status line. */
    fun stillStatus(): String = String.format(Locale.US, "%dx%d: %d detections | pre %.1f  forward %.1f  post %.1f ms",
        width, height, detections.size, preprocessMs, forwardMs, postprocessMs)
}

package org.ssdmobile.postprocess

/** A rectangle in view pixels (left, top, right, bottom); android.graphics.RectF-compatible values. */
data class ViewRect(val left: Float, val top: Float, val right: Float, val bottom: Float)

/**
 * How the source image (camera frame or still photo, already upright) is shown in a view,
 * matching CameraX PreviewView's scale types and ImageView's:
 *  FILL: stretched to the view on both axes (ImageView FIT_XY);
 *  FIT: scaled uniformly to fit inside, centered, letterboxed (PreviewView FIT_CENTER);
 *  CROP: scaled uniformly to cover the view, centered, the overflow cropped (PreviewView FILL_CENTER,
 *        the CameraX default).
 * The model sees the whole image (resized without keeping aspect), so its normalized boxes
 * refer to the whole source image.
 */
enum class ScaleMode { FILL, FIT, CROP }

object PreviewMapping {
    /** The scale modes by their names in tests/vectors (fill, fit, crop). */
    fun scaleMode(name: String): ScaleMode = when (name) {
        "fill" -> ScaleMode.FILL
        "fit" -> ScaleMode.FIT
        "crop" -> ScaleMode.CROP
        else -> throw IllegalArgumentException("unknown scale mode '$name' (fill, fit, crop)")
    }

    /**
     * Normalized box -> view rectangle. mirror flips horizontally (front camera preview).
     * Parts outside the view are not clipped: the caller's canvas clips.
     */
    fun toView(d: Detection, srcWidth: Int, srcHeight: Int, viewWidth: Int, viewHeight: Int,
               mode: ScaleMode, mirror: Boolean = false): ViewRect {
        require(srcWidth > 0 && srcHeight > 0 && viewWidth > 0 && viewHeight > 0) { "sizes must be positive" }
        val sx: Float
        val sy: Float
        when (mode) {
            ScaleMode.FILL -> {
                sx = viewWidth.toFloat() / srcWidth
                sy = viewHeight.toFloat() / srcHeight
            }
            ScaleMode.FIT -> {
                sx = Math.min(viewWidth.toFloat() / srcWidth, viewHeight.toFloat() / srcHeight)
                sy = sx
            }
            ScaleMode.CROP -> {
                sx = Math.max(viewWidth.toFloat() / srcWidth, viewHeight.toFloat() / srcHeight)
                sy = sx
            }
        }
        val offX = (viewWidth - srcWidth * sx) / 2f
        val offY = (viewHeight - srcHeight * sy) / 2f
        var left = d.x1 * srcWidth * sx + offX
        var right = d.x2 * srcWidth * sx + offX
        if (mirror) {
            val l = viewWidth - right
            right = viewWidth - left
            left = l
        }
        return ViewRect(left, d.y1 * srcHeight * sy + offY, right, d.y2 * srcHeight * sy + offY)
    }

    /** Normalized box -> source image pixels, as Detector.nms reports boxes (x * W, y * H). */
    fun toImagePixels(d: Detection, srcWidth: Int, srcHeight: Int): ViewRect =
        ViewRect(d.x1 * srcWidth, d.y1 * srcHeight, d.x2 * srcWidth, d.y2 * srcHeight)
}

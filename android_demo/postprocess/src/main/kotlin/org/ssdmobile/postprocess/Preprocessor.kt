package org.ssdmobile.postprocess

/**
 * Image pixels -> the artifact's input tensor, as the sidecar says (Detector.preprocess):
 * x = (pixel / 255 - mean) / std, resized to (H, W) with the sidecar's resize mode, written in
 * the input layout. With a uint8 input (normalization baked into the graph) only the resize is
 * done here and pixels stay 0..255.
 *
 * Pixels come as Android's ARGB ints (Bitmap.getPixels), row-major, so this stays free of
 * android.* and is unit-tested against the Python reference.
 */
class Preprocessor(private val sidecar: Sidecar) {
    private val p = sidecar.preprocess
    private val normalize = sidecar.input.dtype == "float32"
    // float32 once, as the reference normalizes
    private val mean = p.mean.toFloats()
    private val std = p.std.toFloats()

    init {
        if (sidecar.input.layout != "NCHW" && sidecar.input.layout != "NHWC")
            throw FormatException("input layout '${sidecar.input.layout}' is not a tensor layout (NCHW or NHWC): " +
                "this artifact is not for this app")
        if (sidecar.input.dtype != "float32" && sidecar.input.dtype != "uint8")
            throw FormatException("input dtype '${sidecar.input.dtype}' is not float32 or uint8")
    }

    /** Returns [1 * 3 * H * W] floats in the input layout (uint8 inputs: values 0..255, to copy into bytes). */
    fun run(argb: IntArray, width: Int, height: Int): FloatArray {
        require(argb.size == width * height) { "pixel buffer holds ${argb.size} pixels, not ${width}x$height" }
        val outH = p.height
        val outW = p.width
        val plane = FloatArray(3 * width * height)
        val scale = 1f / 255f
        for (i in 0 until width * height) {
            val px = argb[i]
            for (ch in 0 until 3) {
                val v = ((px shr (16 - 8 * ch)) and 0xFF).toFloat()
                plane[ch * width * height + i] = if (normalize) (v * scale - mean[ch]) / std[ch] else v
            }
        }
        val out = FloatArray(3 * outH * outW)
        val nchw = sidecar.input.layout == "NCHW"
        val tf1 = p.resize == "tf1_bilinear"
        val ys = axis(height, outH, tf1)
        val xs = axis(width, outW, tf1)
        for (ch in 0 until 3) {
            val base = ch * width * height
            for (oy in 0 until outH) {
                val y0 = ys.lo[oy]
                val y1 = ys.hi[oy]
                val ly = ys.lerp[oy]
                for (ox in 0 until outW) {
                    val x0 = xs.lo[ox]
                    val x1 = xs.hi[ox]
                    val lx = xs.lerp[ox]
                    val tl = plane[base + y0 * width + x0]
                    val tr = plane[base + y0 * width + x1]
                    val bl = plane[base + y1 * width + x0]
                    val br = plane[base + y1 * width + x1]
                    val v = if (tf1) {
                        // TF: horizontal lerps first, then vertical, as top + (bottom - top) * lerp
                        val t = tl + (tr - tl) * lx
                        val b = bl + (br - bl) * lx
                        t + (b - t) * ly
                    } else {
                        (1f - ly) * ((1f - lx) * tl + lx * tr) + ly * ((1f - lx) * bl + lx * br)
                    }
                    val idx = if (nchw) (ch * outH + oy) * outW + ox else (oy * outW + ox) * 3 + ch
                    out[idx] = v
                }
            }
        }
        return out
    }

    private class Axis(val lo: IntArray, val hi: IntArray, val lerp: FloatArray)

    private fun axis(inSize: Int, outSize: Int, tf1: Boolean): Axis {
        val scale = inSize.toFloat() / outSize
        val lo = IntArray(outSize)
        val hi = IntArray(outSize)
        val lerp = FloatArray(outSize)
        for (d in 0 until outSize) {
            if (tf1) {
                // TF1 ResizeBilinear(align_corners=False, half_pixel_centers=False)
                val src = d * scale
                val f = Math.floor(src.toDouble()).toFloat()
                lo[d] = Math.max(f.toInt(), 0)
                hi[d] = Math.min(Math.ceil(src.toDouble()).toInt(), inSize - 1)
                lerp[d] = src - f
            } else {
                // torch bilinear, align_corners=False: half-pixel centers, clamped at 0
                val src = Math.max(scale * (d + 0.5f) - 0.5f, 0f)
                val i = src.toInt()
                lo[d] = i
                hi[d] = if (i < inSize - 1) i + 1 else i
                lerp[d] = src - i
            }
        }
        return Axis(lo, hi, lerp)
    }
}

package org.ssdmobile.postprocess

/**
 * Raw core outputs -> normalized boxes and class scores, as ssdmobile/ops/boxes.py does it
 * (decode_boxes, class_scores), in float32 like the reference.
 */
object BoxDecoder {
    /**
     * boxEncodings: [A * 4] in the box coder's channel order; anchors: [A * 4] (cx, cy, w, h).
     * Returns [A * 4] (x1, y1, x2, y2), normalized, not clamped (NMS clamps).
     */
    fun decode(boxEncodings: FloatArray, anchors: FloatArray, coder: BoxCoderSpec): FloatArray =
        decode(boxEncodings, anchors, coder.weights.toFloats(), coder.order, coder.clamp?.toFloat())

    /**
     * The same with the box coder's values: weights (wx, wy, ww, wh); order "xywh" = (dx, dy, dw, dh)
     * as torchvision, "yxhw" = (ty, tx, th, tw) as TensorFlow; clamp: upper bound for dw/dh before
     * exp, null = none. Float32 throughout, like the reference.
     */
    fun decode(boxEncodings: FloatArray, anchors: FloatArray, weights: FloatArray, order: String, clamp: Float?): FloatArray {
        if (boxEncodings.size != anchors.size)
            throw IllegalArgumentException("box_encodings hold ${boxEncodings.size / 4} boxes, the sidecar has " +
                "${anchors.size / 4} anchors: the artifact and its sidecar do not belong together")
        if (weights.size != 4) throw IllegalArgumentException("box coder weights: ${weights.size} values, not 4")
        val yxhw = when (order) {
            "yxhw" -> true
            "xywh" -> false
            else -> throw IllegalArgumentException("unknown box coder order $order")
        }
        val wx = weights[0]
        val wy = weights[1]
        val ww = weights[2]
        val wh = weights[3]
        val out = FloatArray(boxEncodings.size)
        for (a in 0 until boxEncodings.size / 4) {
            val o = a * 4
            val ex = if (yxhw) boxEncodings[o + 1] else boxEncodings[o]
            val ey = if (yxhw) boxEncodings[o] else boxEncodings[o + 1]
            val ew = if (yxhw) boxEncodings[o + 3] else boxEncodings[o + 2]
            val eh = if (yxhw) boxEncodings[o + 2] else boxEncodings[o + 3]
            val dx = ex / wx
            val dy = ey / wy
            var dw = ew / ww
            var dh = eh / wh
            if (clamp != null) {
                if (dw > clamp) dw = clamp
                if (dh > clamp) dh = clamp
            }
            val acx = anchors[o]
            val acy = anchors[o + 1]
            val aw = anchors[o + 2]
            val ah = anchors[o + 3]
            val cx = dx * aw + acx
            val cy = dy * ah + acy
            val halfW = 0.5f * Math.exp(dw.toDouble()).toFloat() * aw
            val halfH = 0.5f * Math.exp(dh.toDouble()).toFloat() * ah
            out[o] = cx - halfW
            out[o + 1] = cy - halfH
            out[o + 2] = cx + halfW
            out[o + 3] = cy + halfH
        }
        return out
    }

    /** classLogits: [A * C] -> scores [A * C]: softmax over each anchor's C classes, or sigmoid. */
    fun scores(classLogits: FloatArray, numClasses: Int, score: String): FloatArray {
        if (classLogits.size % numClasses != 0)
            throw IllegalArgumentException("class_logits size ${classLogits.size} is not a multiple of the " +
                "sidecar's $numClasses classes")
        val out = FloatArray(classLogits.size)
        when (score) {
            "sigmoid" -> for (i in classLogits.indices) out[i] = (1.0 / (1.0 + Math.exp(-classLogits[i].toDouble()))).toFloat()
            "softmax" -> {
                for (a in 0 until classLogits.size / numClasses) {
                    val o = a * numClasses
                    var max = Float.NEGATIVE_INFINITY
                    for (c in 0 until numClasses) if (classLogits[o + c] > max) max = classLogits[o + c]
                    var sum = 0.0
                    for (c in 0 until numClasses) sum += Math.exp((classLogits[o + c] - max).toDouble())
                    for (c in 0 until numClasses) out[o + c] = (Math.exp((classLogits[o + c] - max).toDouble()) / sum).toFloat()
                }
            }
            else -> throw IllegalArgumentException("unknown score function $score")
        }
        return out
    }
}

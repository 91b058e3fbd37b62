package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Test

/** Hand-made cases for each rule of nms_per_class; tests/vectors and the reference data cover the rest. */
class NmsTest {
    private fun cfg(iou: Float = 0.5f, thresh: Float = 0.1f, topk: Int? = null, perClass: Int? = null, maxDet: Int = 100) =
        NmsSpec(false, iou.toDouble(), thresh.toDouble(), topk, perClass, maxDet)

    // 3 classes (0 = background); scores row per anchor
    private val boxes = floatArrayOf(
        0.0f, 0.0f, 0.5f, 0.5f,   // a0
        0.0f, 0.0f, 0.5f, 0.45f,  // a1: IoU 0.9 with a0
        0.5f, 0.5f, 1.0f, 1.0f,   // a2: disjoint
        -0.2f, 0.6f, 0.3f, 1.3f   // a3: clamped to (0, 0.6, 0.3, 1)
    )
    private val scores = floatArrayOf(
        0.1f, 0.8f, 0.1f,
        0.1f, 0.7f, 0.6f,
        0.5f, 0.3f, 0.05f,
        0.0f, 0.1f, 0.9f
    )

    @Test
    fun suppressesWithinClassOnlyAndSortsByScore() {
        val d = Nms.nmsPerClass(boxes, scores, 3, cfg())
        // class 1: a0 0.8 keeps, a1 0.7 suppressed (IoU 0.9), a2 0.3 kept; a3 0.1 not > 0.1
        // class 2: a3 0.9, a1 0.6 (a0, a2 under threshold)
        assertEquals(listOf(2 to 0.9f, 1 to 0.8f, 2 to 0.6f, 1 to 0.3f), d.map { it.label to it.score })
        assertEquals(Detection(0f, 0.6f, 0.3f, 1f, 0.9f, 2), d[0])
    }

    @Test
    fun iouEqualToThresholdIsNotSuppressed() {
        val b = floatArrayOf(0f, 0f, 1f, 1f, 0f, 0f, 1f, 0.5f)  // IoU exactly 0.5
        val s = floatArrayOf(0f, 0.9f, 0f, 0.8f)
        assertEquals(2, Nms.nmsPerClass(b, s, 2, cfg(iou = 0.5f)).size)
        assertEquals(1, Nms.nmsPerClass(b, s, 2, cfg(iou = 0.49f)).size)
    }

    @Test
    fun topkCandidatesPerClassBeforeNms() {
        // class 1 keeps only its best candidate (a0), so a2 never enters NMS
        val d = Nms.nmsPerClass(boxes, scores, 3, cfg(topk = 1))
        assertEquals(listOf(2 to 0.9f, 1 to 0.8f), d.map { it.label to it.score })
    }

    @Test
    fun maxPerClassAfterNmsAndMaxDetections() {
        assertEquals(listOf(2 to 0.9f, 1 to 0.8f), Nms.nmsPerClass(boxes, scores, 3, cfg(perClass = 1)).map { it.label to it.score })
        assertEquals(listOf(2 to 0.9f, 1 to 0.8f, 2 to 0.6f),
            Nms.nmsPerClass(boxes, scores, 3, cfg(maxDet = 3)).map { it.label to it.score })
    }

    @Test
    fun emptyWhenNothingPassesTheThreshold() {
        assertEquals(0, Nms.nmsPerClass(boxes, scores, 3, cfg(thresh = 0.95f)).size)
    }

    @Test
    fun decodeXywhAndYxhwAgree() {
        val anchors = floatArrayOf(0.5f, 0.5f, 0.2f, 0.4f)
        val xywh = BoxDecoder.decode(floatArrayOf(1f, -2f, 0.5f, 0f), anchors,
            BoxCoderSpec(listOf(10.0, 10.0, 5.0, 5.0), "xywh", null))
        val yxhw = BoxDecoder.decode(floatArrayOf(-2f, 1f, 0f, 0.5f), anchors,
            BoxCoderSpec(listOf(10.0, 10.0, 5.0, 5.0), "yxhw", null))
        val w = 0.2f * Math.exp(0.1).toFloat()
        val expected = floatArrayOf(0.52f - w / 2, 0.42f - 0.2f, 0.52f + w / 2, 0.42f + 0.2f)
        for (i in 0 until 4) {
            assertEquals(expected[i], xywh[i], 1e-6f)
            assertEquals(expected[i], yxhw[i], 1e-6f)
        }
        // clamp bounds dw before exp
        val clamped = BoxDecoder.decode(floatArrayOf(0f, 0f, 100f, 0f), anchors,
            BoxCoderSpec(listOf(1.0, 1.0, 1.0, 1.0), "xywh", 1.0))
        assertEquals(0.2f * Math.E.toFloat(), clamped[2] - clamped[0], 1e-6f)
    }

    @Test
    fun softmaxAndSigmoidScores() {
        val s = BoxDecoder.scores(floatArrayOf(0f, 0f, Math.log(2.0).toFloat()), 3, "softmax")
        assertEquals(0.25f, s[0], 1e-6f)
        assertEquals(0.5f, s[2], 1e-6f)
        val g = BoxDecoder.scores(floatArrayOf(0f, 1000f, -1000f), 3, "sigmoid")
        assertEquals(0.5f, g[0], 0f)
        assertEquals(1f, g[1], 0f)
        assertEquals(0f, g[2], 0f)
    }
}

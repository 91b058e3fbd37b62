package org.ssdmobile.postprocess

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class RuntimeTensorsTest {
    @Test
    fun inputAsTheSidecarSays() {
        assertArrayEquals(longArrayOf(1, 3, 4, 6), RuntimeTensors.inputShape(Samples.sidecar()))
        assertArrayEquals(longArrayOf(1, 4, 6, 3), RuntimeTensors.inputShape(Samples.sidecar(layout = "NHWC")))
        assertFalse(RuntimeTensors.isUint8Input(Samples.sidecar()))
        assertTrue(RuntimeTensors.isUint8Input(Samples.sidecar(dtype = "uint8")))
    }

    @Test
    fun uint8InputsRoundHalfToEvenAndClamp() {
        // torch: x.round().clamp(0, 255).to(torch.uint8)
        val bytes = RuntimeTensors.toUint8(floatArrayOf(0f, 0.5f, 1.5f, 2.49f, 127.5f, 254.6f, 255f, 300f, -3f))
        assertEquals(listOf(0, 0, 2, 2, 128, 255, 255, 255, 0), bytes.map { it.toInt() and 0xFF })
    }

    @Test
    fun outputsAsFloats() {
        val s = Samples.sidecar(inGraph = true)
        val out = RuntimeTensors.outputs(s, listOf(FloatArray(12), floatArrayOf(0.5f, 0f, 0f), longArrayOf(1, 90, -1),
            intArrayOf(2)))
        assertEquals(4, out.size)
        assertArrayEquals(floatArrayOf(1f, 90f, -1f), out[2], 0f)
        assertArrayEquals(floatArrayOf(2f), out[3], 0f)
        try {
            RuntimeTensors.outputs(s, listOf(FloatArray(12)))
            fail("accepted one output of four")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!, e.message!!.contains("describes 4 (boxes, scores, labels, num_detections)"))
        }
        try {
            RuntimeTensors.outputs(s, listOf(FloatArray(12), FloatArray(3), "text", IntArray(1)))
            fail("accepted a string output")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!, e.message!!.startsWith("output 2 'labels'"))
        }
    }
}

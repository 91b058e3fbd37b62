package org.ssdmobile.postprocess

import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * The generated reader on behaviour the apps rely on (its field checks are the generator's, tested
 * in Python: tests/test_codegen.py), and the sidecar helpers the apps use.
 */
class SidecarTest {
    private val sample = Samples.sidecar()
    private val text = sample.toJsonText()

    private fun json(): JsonObject = JsonRead.parse(text, "sample").asJsonObject

    @Test
    fun readsWhatItWrites() {
        assertEquals(sample, Sidecar.parse(text, "x.json"))
        val s = Sidecar.parse(text, "x.json")
        assertEquals(4, s.input.height)
        assertEquals(6, s.input.width)
        assertEquals(4, s.preprocess.height)
        assertEquals(6, s.preprocess.width)
        assertEquals(3, s.numClasses)
        assertEquals("caf\u00e9 \"x\"", s.label(2))
        assertEquals("class 7", s.label(7))
        assertEquals("class -1", s.label(-1))
        assertEquals(1, s.outputIndex(OutputNames.CLASS_LOGITS))
        assertTrue(s.hasOutput(OutputNames.BOX_ENCODINGS))
        assertFalse(s.hasOutput(OutputNames.NUM_DETECTIONS))
        val nhwc = Samples.sidecar(layout = "NHWC")
        assertEquals(4, nhwc.input.height)
        assertEquals(6, nhwc.input.width)
    }

    private fun assertRefused(bad: String, vararg fragments: String) {
        try {
            Sidecar.parse(bad, "x.json")
            fail("accepted a bad sidecar")
        } catch (e: FormatException) {
            val m = e.message!!
            assertFalse("not one line: $m", m.contains("\n"))
            assertTrue("'$m' does not name the file", m.startsWith("x.json"))
            for (f in fragments) assertTrue("'$m' lacks '$f'", m.contains(f))
        }
    }

    @Test
    fun refusesWithOneLine() {
        assertRefused(json().apply { addProperty("schema_version", Sidecar.VERSION + 1) }.toString(), "newer", "update the app")
        assertRefused(json().apply { addProperty("format", "ssdmobile-device-result") }.toString(), "ssdmobile-sidecar")
        assertRefused(json().apply { getAsJsonObject("input").remove("layout") }.toString(), "input.layout", "missing")
        assertRefused(json().apply { getAsJsonObject("nms").add("max_detections", JsonPrimitive("many")) }.toString(),
            "nms.max_detections")
        assertRefused(json().apply { getAsJsonObject("decode").getAsJsonObject("box_coder").addProperty("order", "xyxy") }
            .toString(), "decode.box_coder.order", "xywh")
        assertRefused(text.removeSuffix("}"), "invalid JSON")
        assertRefused(text.replace("\"iou_thresh\":0.55", "\"iou_thresh\":NaN"), "invalid JSON")
        assertRefused("[1, 2]", "top level")
    }

    @Test
    fun helpersSayWhatIsWrong() {
        try {
            sample.outputIndex(OutputNames.BOXES)
            fail("found a missing output")
        } catch (e: FormatException) {
            assertTrue(e.message!!, e.message!!.contains("box_encodings, class_logits"))
        }
        assertEquals(sample, sample.requireTarget("executorch", "m.json"))
        try {
            Samples.sidecar(target = "coreml").requireTarget("executorch", "m.json")
            fail("accepted a Core ML sidecar")
        } catch (e: FormatException) {
            assertEquals("m.json is a coreml sidecar; this app runs executorch artifacts", e.message)
        }
    }

    @Test
    fun describesTheModel() {
        assertEquals(listOf(
            "model      m",
            "precision  fp32",
            "input      image 1x3x4x6 NCHW float32",
            "resize     bilinear to 4x6",
            "classes    2 (+ background)",
            "outputs    box_encodings, class_logits",
            "NMS        in the app, iou 0.55, max 300"), sample.describe().split("\n"))
        assertTrue(Samples.sidecar(inGraph = true).describe().endsWith("NMS        in the graph, iou 0.55, max 300"))
    }

    @Test
    fun graphNmsOutputs() {
        val s = Samples.sidecar(inGraph = true)
        val out = Postprocessor(s).run(listOf(
            floatArrayOf(0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.5f, 0.6f, 0.6f, 0f, 0f, 0f, 0f),
            floatArrayOf(0.9f, 0.4f, 0f), floatArrayOf(1f, 2f, 0f), floatArrayOf(2f)))
        assertEquals(listOf(Detection(0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 1), Detection(0.5f, 0.5f, 0.6f, 0.6f, 0.4f, 2)), out)
        // without num_detections: padded rows (score 0, label -1) are dropped
        val noCount = Samples.sidecar(inGraph = true, outputs = Samples.GRAPH_OUTPUTS.subList(0, 3))
        val rows = Postprocessor(noCount).run(listOf(
            floatArrayOf(0.1f, 0.2f, 0.3f, 0.4f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f),
            floatArrayOf(0.9f, 0f, 0f), floatArrayOf(1f, -1f, -1f)))
        assertEquals(listOf(Detection(0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 1)), rows)
    }

    @Test
    fun rawOutputsGoThroughDecodeAndNms() {
        val p = Postprocessor(sample)
        assertEquals(8, p.anchors.size)
        assertEquals(0.25f, p.anchors[7], 0f)
        // zero encodings; anchor 0 background, anchor 1 person: anchor 1's own box
        val d = p.run(listOf(FloatArray(8), floatArrayOf(10f, 0f, 0f, 0f, 10f, 0f)))
        assertEquals(1, d.size)
        assertEquals(1, d[0].label)
        assertEquals(0.2f, d[0].x1, 1e-6f)
        assertEquals(0.625f, d[0].y1, 1e-6f)
        try {
            p.run(listOf(FloatArray(8)))
            fail("accepted one output of two")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("describes 2"))
        }
    }
}

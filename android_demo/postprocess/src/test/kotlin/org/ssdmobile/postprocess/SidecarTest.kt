package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class SidecarTest {
    private val minimal = """
    {"format": "ssdmobile-sidecar", "schema_version": 1, "model": "m", "target": "executorch",
     "precision": "fp32", "artifact": "m.pte",
     "input": {"name": "image", "shape": [1, 3, 4, 6], "layout": "NCHW", "dtype": "float32", "color": "RGB"},
     "preprocess": {"size": [4, 6], "resize": "bilinear", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                    "input_range": [0, 255], "in_graph": false},
     "class_names": ["__background__", "person", "caf\u00e9 \"x\""],
     "outputs": [{"name": "box_encodings", "shape": [1, 2, 4], "dtype": "float32", "meaning": "encodings"},
                 {"name": "class_logits", "shape": [1, 2, 3], "dtype": "float32", "meaning": "logits"}],
     "decode": {"anchor_format": "cxcywh_normalized", "anchors": [[0.5, 0.5, 0.2, 0.2], [0.25, 0.75, 1e-1, 2.5E-1]],
                "box_coder": {"weights": [10.0, 10.0, 5.0, 5.0], "order": "xywh", "clamp": null},
                "box_format": "xyxy_normalized", "score": "softmax"},
     "nms": {"in_graph": false, "iou_thresh": 0.55, "score_thresh": 0.001, "topk_candidates": 300,
             "max_per_class": null, "max_detections": 300},
     "quantization": null, "metrics": null}
    """

    @Test
    fun parsesEveryField() {
        val s = Sidecar.parse(minimal)
        assertEquals("m.pte", s.artifact)
        assertEquals(4, s.input.height)
        assertEquals(6, s.input.width)
        assertEquals("caf\u00e9 \"x\"", s.label(2))
        assertEquals("class 7", s.label(7))
        assertEquals(2, s.decode.numAnchors)
        assertEquals(0.25f, s.decode.anchors[7], 0f)
        assertNull(s.decode.boxCoder.clamp)
        assertNull(s.nms.maxPerClass)
        assertEquals(300, s.nms.topkCandidates)
        assertEquals(1, s.outputIndex(Sidecar.Outputs.CLASS_LOGITS))
    }

    private fun assertRejected(text: String, vararg fragments: String) {
        try {
            Sidecar.parse(text, "x.json")
            fail("accepted a bad sidecar")
        } catch (e: SidecarException) {
            for (f in fragments) assertTrue("'${e.message}' lacks '$f'", e.message!!.contains(f))
        }
    }

    @Test
    fun clearErrors() {
        assertRejected("{\"format\": \"other\"}", "x.json", "not an ssdmobile sidecar")
        assertRejected(minimal.replace("\"layout\": \"NCHW\",", ""), "x.json", "input.layout is missing")
        assertRejected(minimal.replace("\"clamp\": null", "\"clamp\": null, \"x\": 1").replace("\"max_detections\": 300}",
            "\"max_detections\": null}"), "nms.max_detections is missing or null")
        assertRejected(minimal.replace("\"order\": \"xywh\"", "\"order\": \"xyxy\""), "decode.box_coder.order",
            "xywh, yxhw")
        assertRejected(minimal.replace("\"size\": [4, 6]", "\"size\": [4, 6, 1]"), "preprocess.size must have 2 values")
        assertRejected(minimal.replace("[0.25, 0.75, 1e-1, 2.5E-1]", "[0.25, 0.75, 1e-1]"), "decode.anchors[1] must be an array of 4")
        assertRejected(minimal.replace("\"person\"", "null"), "class_names[1] is null")
        assertRejected(minimal.replace("\"shape\": [1, 3, 4, 6]", "\"shape\": [1, 3, 4, \"six\"]"), "x.json",
            "input.shape[3] must be an integer")
        assertRejected(minimal.replace("\"max_detections\": 300", "\"max_detections\": \"many\""), "x.json",
            "nms.max_detections")
        assertRejected(minimal.replace("\"schema_version\": 1", "\"schema_version\": 9"), "update the app")
        assertRejected(minimal.replace("\"max_detections\": 300}", "\"max_detections\": 300"), "x.json", "invalid JSON")
        assertRejected("[1, 2]", "top level must be a JSON object")
        try {
            Sidecar.parse(minimal).outputIndex(Sidecar.Outputs.BOXES)
            fail("found a missing output")
        } catch (e: SidecarException) {
            assertTrue(e.message!!.contains("box_encodings, class_logits"))
        }
    }

    /** Gson's own fromJson is lenient; the sidecar reader is not (RFC 8259, as Python and the schema). */
    @Test
    fun strictJson() {
        for (bad in listOf(minimal + " x", minimal.replace("\"m.pte\"", "'m.pte'"),
                minimal.replace("\"iou_thresh\": 0.55", "\"iou_thresh\": NaN"), "// c\n" + minimal, ""))
            assertRejected(bad, "x.json", "invalid JSON")
        // float32 values survive the text round trip exactly
        assertEquals(0.1f, Sidecar.parse(minimal.replace("0.55", "0.10000000149011612")).nms.iouThresh, 0f)
    }

    @Test
    fun graphNmsOutputs() {
        val text = minimal.replace("\"in_graph\": false, \"iou", "\"in_graph\": true, \"iou").replace(
            """"outputs": [{"name": "box_encodings", "shape": [1, 2, 4], "dtype": "float32", "meaning": "encodings"},
                 {"name": "class_logits", "shape": [1, 2, 3], "dtype": "float32", "meaning": "logits"}]""",
            """"outputs": [{"name": "boxes", "shape": [1, 3, 4], "dtype": "float32", "meaning": "xyxy"},
                 {"name": "scores", "shape": [1, 3], "dtype": "float32", "meaning": "descending"},
                 {"name": "labels", "shape": [1, 3], "dtype": "int64", "meaning": "ids"},
                 {"name": "num_detections", "shape": [1], "dtype": "int64", "meaning": "valid rows"}]""")
        val s = Sidecar.parse(text)
        assertTrue(s.nms.inGraph)
        val out = Postprocessor(s).run(listOf(
            floatArrayOf(0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.5f, 0.6f, 0.6f, 0f, 0f, 0f, 0f),
            floatArrayOf(0.9f, 0.4f, 0f), floatArrayOf(1f, 2f, 0f), floatArrayOf(2f)))
        assertEquals(listOf(Detection(0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 1), Detection(0.5f, 0.5f, 0.6f, 0.6f, 0.4f, 2)), out)
    }
}

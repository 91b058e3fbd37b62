package org.ssdmobile.postprocess

/**
 * The sidecar JSON that `ssdmobile export` writes next to every artifact (ssdmobile/sidecar.py).
 * The app reads everything model-specific from here: input, preprocessing, labels, output
 * layout, anchors and box coder, score function, and whether NMS is in the graph and its
 * thresholds. Every field read here is listed in ssdmobile.sidecar.REQUIRED_FIELDS, and
 * tests/test_sidecar_fields.py keeps the two lists in step (see FIELDS_READ below).
 */
class SidecarException(message: String) : Exception(message)

class InputSpec(
    val name: String,
    val shape: IntArray,
    /** "NCHW" or "NHWC" for tensor inputs ("image_RGB" for Core ML image inputs) */
    val layout: String,
    /** "float32" (app normalizes) or "uint8" (normalization baked into the graph) */
    val dtype: String
) {
    val height: Int get() = if (layout == "NHWC") shape[1] else shape[2]
    val width: Int get() = if (layout == "NHWC") shape[2] else shape[3]
}

class PreprocessSpec(
    /** (H, W) the image is resized to */
    val height: Int,
    val width: Int,
    /** "bilinear" (half-pixel, torch align_corners=False) or "tf1_bilinear" */
    val resize: String,
    val mean: FloatArray,
    val std: FloatArray,
    /** pixel value range before /255: [0, 255] */
    val inputRange: FloatArray
)

class OutputSpec(val name: String, val shape: IntArray, val dtype: String, val meaning: String)

class BoxCoderSpec(
    /** (wx, wy, ww, wh) */
    val weights: FloatArray,
    /** "xywh" = (dx, dy, dw, dh) as torchvision; "yxhw" = (ty, tx, th, tw) as TensorFlow */
    val order: String,
    /** upper bound for dw/dh before exp; null = none */
    val clamp: Float?
)

class DecodeSpec(
    /** [A * 4] normalized (cx, cy, w, h) */
    val anchors: FloatArray,
    val boxCoder: BoxCoderSpec,
    /** "softmax" over classes or "sigmoid" per class */
    val score: String
) {
    val numAnchors: Int get() = anchors.size / 4
}

class NmsSpec(
    val inGraph: Boolean,
    val iouThresh: Float,
    val scoreThresh: Float,
    /** per class, before NMS; null = all */
    val topkCandidates: Int?,
    /** per class, after NMS; null = no cap */
    val maxPerClass: Int?,
    val maxDetections: Int
)

class Sidecar(
    val model: String,
    val target: String,
    val precision: String,
    val artifact: String,
    val input: InputSpec,
    val preprocess: PreprocessSpec,
    /** index = label id; index 0 is background */
    val classNames: List<String>,
    val outputs: List<OutputSpec>,
    val decode: DecodeSpec,
    val nms: NmsSpec
) {
    val numClasses: Int get() = classNames.size

    fun label(id: Int): String = classNames.getOrElse(id) { "class $id" }

    /** Index of the output with this name (see [Outputs]), or an error naming what is there. */
    fun outputIndex(name: String): Int {
        val i = outputs.indexOfFirst { it.name == name }
        if (i < 0) throw SidecarException(
            "sidecar of '$artifact' has no output named '$name' (outputs: " + outputs.joinToString { it.name } + ")")
        return i
    }

    /** Output names of ssdmobile's export contract (ssdmobile/export/_common.py raw_outputs, nms_outputs). */
    object Outputs {
        /** NMS not in graph: [1, A, 4] raw encodings, decoded with decode.anchors and decode.box_coder */
        const val BOX_ENCODINGS = "box_encodings"
        /** NMS not in graph: [1, A, C] raw logits (column 0 background), scored with decode.score */
        const val CLASS_LOGITS = "class_logits"
        /** NMS in graph: [1, K, 4] normalized xyxy, [1, K] descending scores, [1, K] label ids, [1] valid rows */
        const val BOXES = "boxes"
        const val SCORES = "scores"
        const val LABELS = "labels"
        const val NUM_DETECTIONS = "num_detections"
    }

    companion object {
        const val FORMAT = "ssdmobile-sidecar"
        const val SCHEMA_VERSION = 1

        /** Every dotted field this parser reads; must be a subset of ssdmobile.sidecar.REQUIRED_FIELDS. */
        val FIELDS_READ = listOf(
            "format", "schema_version", "model", "target", "precision", "artifact",
            "input.name", "input.shape", "input.layout", "input.dtype",
            "preprocess.size", "preprocess.resize", "preprocess.mean", "preprocess.std", "preprocess.input_range",
            "class_names", "outputs", "decode.anchors", "decode.anchor_format", "decode.box_coder.weights",
            "decode.box_coder.order", "decode.box_coder.clamp", "decode.score",
            "nms.in_graph", "nms.iou_thresh", "nms.score_thresh", "nms.topk_candidates", "nms.max_per_class",
            "nms.max_detections"
        )

        fun parse(text: String, source: String = "sidecar"): Sidecar {
            val j = JsonObj.parse(text, source)
            if (!j.has("format") || j.raw("format") != FORMAT)
                throw SidecarException("$source: not an ssdmobile sidecar (no \"format\": \"$FORMAT\")")
            val version = j.int("schema_version")
            if (version > SCHEMA_VERSION)
                throw SidecarException("$source: schema_version $version is newer than this app understands " +
                    "($SCHEMA_VERSION); update the app")

            val ji = j.obj("input")
            // Core ML sidecars say "image_RGB"; the Android app checks for NCHW/NHWC where it feeds tensors
            val layout = ji.str("layout")
            val shape = ji.ints("shape")
            if (shape.size != 4) ji.fail("shape", "must have 4 dimensions")
            val dtype = ji.str("dtype")
            val input = InputSpec(ji.str("name"), shape, layout, dtype)

            val jp = j.obj("preprocess")
            val size = jp.ints("size")
            if (size.size != 2) jp.fail("size", "must be [H, W]")
            val resize = jp.str("resize")
            if (resize != "bilinear" && resize != "tf1_bilinear") jp.fail("resize", "unknown mode $resize")
            val mean = jp.doubles("mean")
            val std = jp.doubles("std")
            if (mean.size != 3 || std.size != 3) jp.fail("mean", "and std must have 3 values")
            val preprocess = PreprocessSpec(size[0], size[1], resize, toFloats(mean), toFloats(std),
                toFloats(jp.doubles("input_range")))

            val classNames = j.strings("class_names")
            val outputs = j.objects("outputs").map {
                OutputSpec(it.str("name"), it.ints("shape"), it.str("dtype"), it.str("meaning"))
            }

            val jd = j.obj("decode")
            val anchorFormat = jd.str("anchor_format")
            if (anchorFormat != "cxcywh_normalized") jd.fail("anchor_format", "must be cxcywh_normalized")
            val rows = jd.list("anchors")
            val anchors = FloatArray(rows.size * 4)
            for ((i, r) in rows.withIndex()) {
                val row = r as? List<*> ?: jd.fail("anchors", "must be [[cx, cy, w, h], ...]")
                if (row.size != 4) jd.fail("anchors", "rows must have 4 values")
                for (k in 0 until 4) anchors[i * 4 + k] = ((row[k] as? Double) ?: jd.fail("anchors", "must hold numbers")).toFloat()
            }
            val jb = jd.obj("box_coder")
            val weights = jb.doubles("weights")
            if (weights.size != 4) jb.fail("weights", "must have 4 values")
            val order = jb.str("order")
            if (order != "xywh" && order != "yxhw") jb.fail("order", "must be xywh or yxhw, not $order")
            val score = jd.str("score")
            if (score != "softmax" && score != "sigmoid") jd.fail("score", "must be softmax or sigmoid, not $score")
            val decode = DecodeSpec(anchors, BoxCoderSpec(toFloats(weights), order, jb.doubleOrNull("clamp")?.toFloat()), score)

            val jn = j.obj("nms")
            val nms = NmsSpec(jn.bool("in_graph"), jn.double("iou_thresh").toFloat(), jn.double("score_thresh").toFloat(),
                jn.intOrNull("topk_candidates"), jn.intOrNull("max_per_class"), jn.int("max_detections"))

            return Sidecar(j.str("model"), j.str("target"), j.str("precision"), j.str("artifact"),
                input, preprocess, classNames, outputs, decode, nms)
        }

        private fun toFloats(d: DoubleArray) = FloatArray(d.size) { d[it].toFloat() }
    }
}

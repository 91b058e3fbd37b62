package org.ssdmobile.postprocess

import com.google.gson.annotations.SerializedName

/**
 * The sidecar JSON that `ssdmobile export` writes next to every artifact (ssdmobile/sidecar.py;
 * its JSON Schema is ssdmobile/schema/sidecar.schema.json). The app reads everything
 * model-specific from here: input, preprocessing, labels, output layout, anchors and box coder,
 * score function, and whether NMS is in the graph and its thresholds.
 *
 * Gson maps the JSON onto the classes below (JsonMapping: snake_case JSON names); what the app
 * relies on beyond types is said by annotations that [Sidecar.parse] enforces: every property is
 * present and non-null unless @MayBeNull, arrays have their @Length, strings are @OneOf the
 * values the app handles. Fields the app does not need (quantization, metrics, spec...) are not
 * mapped and are ignored. SchemaTest checks every mapped property against the schema.
 */
class SidecarException(message: String) : Exception(message)

class InputSpec(
    val name: String,
    @Length(4) val shape: IntArray,
    /** "NCHW" or "NHWC" for tensor inputs ("image_RGB" for Core ML image inputs; Preprocessor refuses it) */
    @OneOf("NCHW", "NHWC", "image_RGB") val layout: String,
    /** "float32" (app normalizes) or "uint8" (normalization baked into the graph) */
    @OneOf("float32", "uint8") val dtype: String
) {
    val height: Int get() = if (layout == "NHWC") shape[1] else shape[2]
    val width: Int get() = if (layout == "NHWC") shape[2] else shape[3]
}

class PreprocessSpec(
    /** (H, W) the image is resized to */
    @Length(2) val size: IntArray,
    /** "bilinear" (half-pixel, torch align_corners=False) or "tf1_bilinear" */
    @OneOf("bilinear", "tf1_bilinear") val resize: String,
    @Length(3) val mean: FloatArray,
    @Length(3) val std: FloatArray,
    /** pixel value range before /255: [0, 255] */
    @Length(2) val inputRange: FloatArray
) {
    val height: Int get() = size[0]
    val width: Int get() = size[1]
}

class OutputSpec(val name: String, val shape: IntArray, val dtype: String, val meaning: String)

class BoxCoderSpec(
    /** (wx, wy, ww, wh) */
    @Length(4) val weights: FloatArray,
    /** "xywh" = (dx, dy, dw, dh) as torchvision; "yxhw" = (ty, tx, th, tw) as TensorFlow */
    @OneOf("xywh", "yxhw") val order: String,
    /** upper bound for dw/dh before exp; null = none */
    @MayBeNull val clamp: Float?
)

class DecodeSpec(
    /** normalized (cx, cy, w, h) per anchor */
    @SerializedName("anchors") @Length(rows = 4) val anchorRows: Array<FloatArray>,
    val boxCoder: BoxCoderSpec,
    /** "softmax" over classes or "sigmoid" per class */
    @OneOf("softmax", "sigmoid") val score: String,
    @OneOf("cxcywh_normalized") val anchorFormat: String
) {
    val numAnchors: Int get() = anchorRows.size

    /** [A * 4] normalized (cx, cy, w, h): what BoxDecoder reads, flattened once */
    val anchors: FloatArray
        get() = flat ?: FloatArray(anchorRows.size * 4) { anchorRows[it / 4][it % 4] }.also { flat = it }

    @Transient
    private var flat: FloatArray? = null
}

class NmsSpec(
    val inGraph: Boolean,
    val iouThresh: Float,
    val scoreThresh: Float,
    /** per class, before NMS; null = all */
    @MayBeNull val topkCandidates: Int?,
    /** per class, after NMS; null = no cap */
    @MayBeNull val maxPerClass: Int?,
    val maxDetections: Int
)

/** Read first, so that another file or a newer schema gets its own message, not a mapping error. */
class SidecarHeader(val format: String, val schemaVersion: Int)

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

        fun parse(text: String, source: String = "sidecar"): Sidecar {
            val tree = JsonMapping.parseStrict(text, source)
            if (!tree.isJsonObject) throw SidecarException("$source: top level must be a JSON object")
            val format = tree.asJsonObject.get("format")
            if (format == null || !format.isJsonPrimitive || format.asString != FORMAT)
                throw SidecarException("$source: not an ssdmobile sidecar (no \"format\": \"$FORMAT\")")
            val version = JsonMapping.map(tree, SidecarHeader::class.java, source).schemaVersion
            if (version > SCHEMA_VERSION)
                throw SidecarException("$source: schema_version $version is newer than this app understands " +
                    "($SCHEMA_VERSION); update the app")
            return JsonMapping.map(tree, Sidecar::class.java, source)
        }
    }
}

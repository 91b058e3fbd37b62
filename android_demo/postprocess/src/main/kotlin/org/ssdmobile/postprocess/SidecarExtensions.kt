package org.ssdmobile.postprocess

/*
 * What the apps do with a sidecar beyond reading it. The sidecar itself (Sidecar, InputSpec,
 * PreprocessSpec, OutputSpec, DecodeSpec, NmsSpec...) is generated from the Python models
 * (generated/Sidecar.kt, `python -m ssdmobile.schema`); Sidecar.parse checks every field.
 */

/** Output names of ssdmobile's export contract (ssdmobile/export/_common.py raw_outputs, nms_outputs). */
object OutputNames {
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

val InputSpec.height: Int get() = if (layout == "NHWC") shape[1] else shape[2]
val InputSpec.width: Int get() = if (layout == "NHWC") shape[2] else shape[3]

/** (H, W) the image is resized to */
val PreprocessSpec.height: Int get() = size[0]
val PreprocessSpec.width: Int get() = size[1]

/** Classes including the background (index 0). */
val Sidecar.numClasses: Int get() = classNames.size

/** The class name of a label id, or "class N" for an id the sidecar does not name. */
fun Sidecar.label(id: Int): String = if (id >= 0 && id < classNames.size) classNames[id] else "class $id"

fun Sidecar.hasOutput(name: String): Boolean = outputs.any { it.name == name }

/** Index of the output with this name (see [OutputNames]), or an error naming what is there. */
fun Sidecar.outputIndex(name: String): Int {
    val i = outputs.indexOfFirst { it.name == name }
    if (i < 0) throw FormatException(
        "sidecar of '$artifact' has no output named '$name' (outputs: " + outputs.joinToString { it.name } + ")")
    return i
}

/** This sidecar, or an error when it is for another kind of artifact (e.g. a Core ML sidecar in the Android app). */
fun Sidecar.requireTarget(target: String, source: String): Sidecar {
    if (this.target != target)
        throw FormatException("$source is a ${this.target} sidecar; this app runs $target artifacts")
    return this
}

/** What the model picker shows: a few lines, one fact each. */
fun Sidecar.describe(): String {
    val nmsWhere = if (nms.inGraph) "in the graph" else "in the app"
    return listOf(
        "model      $model",
        "precision  $precision",
        "input      ${input.name} ${input.shape.joinToString("x")} ${input.layout} ${input.dtype}",
        "resize     ${preprocess.resize} to ${preprocess.height}x${preprocess.width}",
        "classes    ${numClasses - 1} (+ background)",
        "outputs    ${outputs.joinToString { it.name }}",
        "NMS        $nmsWhere, iou ${nms.iouThresh}, max ${nms.maxDetections}"
    ).joinToString("\n")
}

/** JSON numbers (double) -> float32, as the runtimes compute; done once per sidecar, not per frame. */
fun List<Double>.toFloats(): FloatArray = FloatArray(size) { this[it].toFloat() }

/** Rows of `width` values (anchors, boxes, score rows) -> one flat [rows * width] float32 array. */
fun List<List<Double>>.flattenRows(width: Int): FloatArray {
    val out = FloatArray(size * width)
    for ((i, row) in withIndex()) {
        if (row.size != width) throw FormatException("row $i has ${row.size} values, not $width")
        for (k in 0 until width) out[i * width + k] = row[k].toFloat()
    }
    return out
}

package org.ssdmobile.postprocess

/**
 * What an app does with the artifact's outputs, chosen by the sidecar alone:
 *  - NMS not in the graph: outputs "box_encodings" [1, A, 4] and "class_logits" [1, A, C]
 *    -> decode with the sidecar's anchors and box coder, score, per-class NMS;
 *  - NMS in the graph: "boxes" [1, K, 4], "scores" [1, K], "labels" [1, K] and optionally
 *    "num_detections" [1] -> the first valid rows.
 * Outputs are found by name (Sidecar.Outputs). `outputs` are the artifact's outputs as flat
 * float arrays (int64 labels converted), in the sidecar's output order.
 */
class Postprocessor(val sidecar: Sidecar) {
    fun run(outputs: List<FloatArray>): List<Detection> {
        if (outputs.size != sidecar.outputs.size)
            throw IllegalArgumentException("the artifact returned ${outputs.size} outputs, its sidecar describes " +
                "${sidecar.outputs.size}")
        return if (sidecar.nms.inGraph) fromGraphNms(outputs) else fromRaw(
            outputs[sidecar.outputIndex(Sidecar.Outputs.BOX_ENCODINGS)],
            outputs[sidecar.outputIndex(Sidecar.Outputs.CLASS_LOGITS)])
    }

    /** boxEncodings [A * 4], classLogits [A * C] of one image. */
    fun fromRaw(boxEncodings: FloatArray, classLogits: FloatArray): List<Detection> {
        val boxes = BoxDecoder.decode(boxEncodings, sidecar.decode.anchors, sidecar.decode.boxCoder)
        val scores = BoxDecoder.scores(classLogits, sidecar.numClasses, sidecar.decode.score)
        return Nms.nmsPerClass(boxes, scores, sidecar.numClasses, sidecar.nms)
    }

    private fun fromGraphNms(outputs: List<FloatArray>): List<Detection> {
        val boxes = outputs[sidecar.outputIndex(Sidecar.Outputs.BOXES)]
        val scores = outputs[sidecar.outputIndex(Sidecar.Outputs.SCORES)]
        val labels = outputs[sidecar.outputIndex(Sidecar.Outputs.LABELS)]
        val hasCount = sidecar.outputs.any { it.name == Sidecar.Outputs.NUM_DETECTIONS }
        var n = scores.size
        if (hasCount) n = Math.min(n, outputs[sidecar.outputIndex(Sidecar.Outputs.NUM_DETECTIONS)][0].toInt())
        val out = ArrayList<Detection>(n)
        for (i in 0 until n) {
            // padded rows (no count output) carry score 0 or a negative label
            if (!hasCount && (scores[i] <= 0f || labels[i] < 0f)) continue
            out.add(Detection(boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3], scores[i],
                Math.round(labels[i])))
        }
        return out
    }
}

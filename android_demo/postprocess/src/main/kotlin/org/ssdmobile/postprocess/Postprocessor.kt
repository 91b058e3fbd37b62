package org.ssdmobile.postprocess

/**
 * What an app does with the artifact's outputs, chosen by the sidecar alone:
 *  - NMS not in the graph: outputs "box_encodings" [1, A, 4] and "class_logits" [1, A, C]
 *    -> decode with the sidecar's anchors and box coder, score, per-class NMS;
 *  - NMS in the graph: "boxes" [1, K, 4], "scores" [1, K], "labels" [1, K] and optionally
 *    "num_detections" [1] -> the first valid rows.
 * Outputs are found by name ([OutputNames]). `outputs` are the artifact's outputs as flat
 * float arrays (int64 labels converted: [RuntimeTensors]), in the sidecar's output order.
 *
 * The sidecar's numbers (JSON doubles) are converted to float32 once, here: the anchors
 * flattened, the box coder's weights and clamp, the NMS thresholds.
 */
class Postprocessor(val sidecar: Sidecar) {
    private val numClasses = sidecar.numClasses
    private val inGraph = sidecar.nms.inGraph

    /** [A * 4] normalized (cx, cy, w, h): what BoxDecoder reads */
    val anchors: FloatArray = if (inGraph) FloatArray(0) else sidecar.decode.anchors.flattenRows(4)
    private val weights = sidecar.decode.boxCoder.weights.toFloats()
    private val order = sidecar.decode.boxCoder.order
    private val clamp: Float? = sidecar.decode.boxCoder.clamp?.toFloat()
    private val score = sidecar.decode.score
    private val iouThresh = sidecar.nms.iouThresh.toFloat()
    private val scoreThresh = sidecar.nms.scoreThresh.toFloat()

    // output positions, resolved once (an error names what the sidecar has)
    private val rawIndex: IntArray = if (inGraph) IntArray(0) else
        intArrayOf(sidecar.outputIndex(OutputNames.BOX_ENCODINGS), sidecar.outputIndex(OutputNames.CLASS_LOGITS))
    private val graphIndex: IntArray = if (!inGraph) IntArray(0) else
        intArrayOf(sidecar.outputIndex(OutputNames.BOXES), sidecar.outputIndex(OutputNames.SCORES),
            sidecar.outputIndex(OutputNames.LABELS))
    private val countIndex: Int = if (inGraph && sidecar.hasOutput(OutputNames.NUM_DETECTIONS))
        sidecar.outputIndex(OutputNames.NUM_DETECTIONS) else -1

    fun run(outputs: List<FloatArray>): List<Detection> {
        if (outputs.size != sidecar.outputs.size)
            throw IllegalArgumentException("the artifact returned ${outputs.size} outputs, its sidecar describes " +
                "${sidecar.outputs.size}")
        return if (inGraph) fromGraphNms(outputs) else fromRaw(outputs[rawIndex[0]], outputs[rawIndex[1]])
    }

    /** boxEncodings [A * 4], classLogits [A * C] of one image. */
    fun fromRaw(boxEncodings: FloatArray, classLogits: FloatArray): List<Detection> {
        val boxes = BoxDecoder.decode(boxEncodings, anchors, weights, order, clamp)
        val scores = BoxDecoder.scores(classLogits, numClasses, score)
        return Nms.nmsPerClass(boxes, scores, numClasses, iouThresh, scoreThresh, sidecar.nms.topkCandidates,
            sidecar.nms.maxPerClass, sidecar.nms.maxDetections)
    }

    private fun fromGraphNms(outputs: List<FloatArray>): List<Detection> {
        val boxes = outputs[graphIndex[0]]
        val scores = outputs[graphIndex[1]]
        val labels = outputs[graphIndex[2]]
        val hasCount = countIndex >= 0
        var n = scores.size
        if (hasCount) n = Math.min(n, outputs[countIndex][0].toInt())
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

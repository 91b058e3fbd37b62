package org.ssdmobile.postprocess

/** One detection: normalized (x1, y1, x2, y2) in the source image, label id (0 = background never appears). */
data class Detection(val x1: Float, val y1: Float, val x2: Float, val y2: Float, val score: Float, val label: Int)

/**
 * Per-class NMS exactly as ssdmobile/ops/boxes.py::nms_per_class (torchvision SSD's
 * postprocess_detections, plus TF's max_per_class):
 *  1. boxes clamped to [0, 1];
 *  2. candidates: every (anchor, class >= 1) with score > scoreThresh;
 *  3. each class keeps its topkCandidates best candidates;
 *  4. greedy NMS within each class: a box is dropped when its IoU with a kept, higher-scored box
 *     of the same class is > iouThresh (float32 IoU, as torchvision's kernel);
 *  5. all kept boxes sorted by descending score; optionally only each class's best maxPerClass;
 *  6. the first maxDetections.
 */
object Nms {
    fun nmsPerClass(boxes: FloatArray, scores: FloatArray, numClasses: Int, cfg: NmsSpec): List<Detection> =
        nmsPerClass(boxes, scores, numClasses, cfg.iouThresh.toFloat(), cfg.scoreThresh.toFloat(), cfg.topkCandidates,
            cfg.maxPerClass, cfg.maxDetections)

    /**
     * The same with the settings' values (float32 thresholds, as the reference compares);
     * topkCandidates and maxPerClass null = no limit.
     */
    fun nmsPerClass(boxes: FloatArray, scores: FloatArray, numClasses: Int, iouThresh: Float, scoreThresh: Float,
                    topkCandidates: Int?, maxPerClass: Int?, maxDetections: Int): List<Detection> {
        val numAnchors = boxes.size / 4
        if (scores.size != numAnchors * numClasses)
            throw IllegalArgumentException("scores hold ${scores.size} values, expected $numAnchors anchors x $numClasses classes")
        val clamped = FloatArray(boxes.size) { i -> Math.min(Math.max(boxes[i], 0f), 1f) }
        val kept = ArrayList<Detection>()
        val cand = IntArray(numAnchors)
        for (c in 1 until numClasses) {
            var n = 0
            for (a in 0 until numAnchors) if (scores[a * numClasses + c] > scoreThresh) cand[n++] = a
            if (n == 0) continue
            // descending score, ties in anchor order (the reference's stable argsort)
            val order = (0 until n).map { cand[it] }
                .sortedWith(Comparator { p, q -> java.lang.Float.compare(scores[q * numClasses + c], scores[p * numClasses + c]) })
            val top = if (topkCandidates != null && order.size > topkCandidates) order.subList(0, topkCandidates) else order
            for (a in greedy(clamped, top, iouThresh)) {
                kept.add(Detection(clamped[a * 4], clamped[a * 4 + 1], clamped[a * 4 + 2], clamped[a * 4 + 3],
                    scores[a * numClasses + c], c))
            }
        }
        var sorted = kept.sortedWith(Comparator { p, q -> java.lang.Float.compare(q.score, p.score) })
        if (maxPerClass != null) {
            val perClass = HashMap<Int, Int>()
            sorted = sorted.filter { d ->
                val n = perClass[d.label] ?: 0
                perClass[d.label] = n + 1
                n < maxPerClass
            }
        }
        return if (sorted.size > maxDetections) sorted.subList(0, maxDetections) else sorted
    }

    /** Greedy NMS over anchors already sorted by descending score; returns the kept anchors in that order. */
    private fun greedy(boxes: FloatArray, order: List<Int>, iouThresh: Float): List<Int> {
        val n = order.size
        val suppressed = BooleanArray(n)
        val keep = ArrayList<Int>()
        for (i in 0 until n) {
            if (suppressed[i]) continue
            val a = order[i]
            keep.add(a)
            val ax1 = boxes[a * 4]
            val ay1 = boxes[a * 4 + 1]
            val ax2 = boxes[a * 4 + 2]
            val ay2 = boxes[a * 4 + 3]
            val areaA = (ax2 - ax1) * (ay2 - ay1)
            for (j in i + 1 until n) {
                if (suppressed[j]) continue
                val b = order[j]
                val w = Math.max(0f, Math.min(ax2, boxes[b * 4 + 2]) - Math.max(ax1, boxes[b * 4]))
                val h = Math.max(0f, Math.min(ay2, boxes[b * 4 + 3]) - Math.max(ay1, boxes[b * 4 + 1]))
                val inter = w * h
                val areaB = (boxes[b * 4 + 2] - boxes[b * 4]) * (boxes[b * 4 + 3] - boxes[b * 4 + 1])
                if (inter / (areaA + areaB - inter) > iouThresh) suppressed[j] = true
            }
        }
        return keep
    }

    fun iou(p: Detection, q: Detection): Float {
        val w = Math.max(0f, Math.min(p.x2, q.x2) - Math.max(p.x1, q.x1))
        val h = Math.max(0f, Math.min(p.y2, q.y2) - Math.max(p.y1, q.y1))
        val inter = w * h
        val union = (p.x2 - p.x1) * (p.y2 - p.y1) + (q.x2 - q.x1) * (q.y2 - q.y1) - inter
        return if (union > 0f) inter / union else 0f
    }
}

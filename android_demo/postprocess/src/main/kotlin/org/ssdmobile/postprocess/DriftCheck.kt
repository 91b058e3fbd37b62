package org.ssdmobile.postprocess

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The on-device drift check: the golden data `ssdmobile export --golden N` attaches to an artifact
 * (ssdmobile/drift.py: `<stem>.golden/golden.json`, read as the generated [ArtifactGolden], and its
 * files) is run through the phone's runtime, and the outputs are compared with the float model's.
 * One rule, shared with the Python side (ssdmobile.drift.compare) and the iOS app, and run on the
 * same cases by all three (the "drift" cases of tests/vectors):
 *  - raw outputs (no NMS in the graph): the largest |device - float| over the finite differences,
 *    and within tolerance when every difference is finite and |device - float| <= atol + rtol * |device|
 *    (ExecuTorch BundledProgram's rule), in double ([rawDifference]);
 *  - detections (decoded here by [Postprocessor], exactly as the app does) match the float
 *    model's image by image as ssdmobile.validate.detections_match decides ([detectionsMatch]),
 *    with the golden score and box tolerances; an image with a non-finite output never matches;
 *  - any NaN or infinite output fails the check ([nonFinite]);
 *  - [passed]: no non-finite output, raw outputs within tolerance (or no raw outputs), and at
 *    least minImagesMatched images matched.
 * The app feeds [check] what its runtime returned; tests feed it what ExecuTorch's Python
 * runtime returned for a real exported program (DriftCheckTest).
 */
class DriftCheck(val golden: ArtifactGolden, val sidecar: Sidecar, private val read: (String) -> ByteArray) {
    init {
        if (golden.artifact != sidecar.artifact)
            throw FormatException("golden data is for ${golden.artifact}, not ${sidecar.artifact}")
        if (golden.nmsInGraph != sidecar.nms.inGraph)
            throw FormatException("golden data and sidecar of ${sidecar.artifact} disagree on NMS in the graph")
    }

    val images: Int get() = golden.images.size

    /**
     * Image i's input as the app hands it to [EtDetector.forward]: float32 tensors as stored; for a
     * program that takes camera bytes (uint8 NHWC) the stored pixels as 0..255 floats, which
     * [RuntimeTensors.toUint8] turns back into the very same bytes.
     */
    fun input(i: Int): FloatArray {
        val case = golden.images[i]
        if (golden.input.dtype == "uint8" && golden.input.layout == "NHWC") {
            val bytes = inputBytes(i)
            return FloatArray(bytes.size) { (bytes[it].toInt() and 0xFF).toFloat() }
        }
        if (golden.input.dtype != "float32")
            throw FormatException("${case.input}: ${golden.input.dtype} golden inputs are for image-input (Core ML) artifacts")
        return readF32(read(case.input))
    }

    /** Image i's pixels for a program that takes camera bytes: uint8 RGB [H, W, 3], as the host made them. */
    fun inputBytes(i: Int): ByteArray {
        val case = golden.images[i]
        if (golden.input.dtype != "uint8" || golden.input.layout != "NHWC")
            throw FormatException("${case.input}: the program takes ${golden.input.dtype} ${golden.input.layout}, not uint8 pixels")
        val bytes = read(case.input)
        val size = golden.input.shape.fold(1) { a, b -> a * b }
        if (bytes.size != size) throw FormatException("${case.input}: ${bytes.size} bytes, the input holds $size")
        return bytes
    }

    /** `outputs[i]`: the runtime's outputs for image i, flat, in the sidecar's output order. */
    fun check(outputs: List<List<FloatArray>>): DriftResult {
        if (outputs.size != images) throw IllegalArgumentException("${outputs.size} output sets for $images golden images")
        val tol = golden.tolerances
        val post = Postprocessor(sidecar)
        val raw = !golden.nmsInGraph
        var diff = RawDifference.NONE
        var nonFinite = 0
        var matched = 0
        for ((i, case) in golden.images.withIndex()) {
            val outs = outputs[i]
            val bad = nonFinite(outs)
            nonFinite += bad
            if (raw) {
                val files = case.floatOutputs ?: throw FormatException("${case.image}: golden data has no float outputs")
                if (files.size != outs.size)
                    throw IllegalArgumentException("${case.image}: ${outs.size} outputs, the golden data has ${files.size}")
                for ((k, name) in files.withIndex()) {
                    val want = readF32(read(name))
                    if (outs[k].size != want.size)
                        throw IllegalArgumentException("${case.image}: output $k has ${outs[k].size} values, float has ${want.size}")
                    diff += rawDifference(outs[k], want, tol.atol, tol.rtol)
                }
            }
            if (bad > 0) continue
            val w = case.width.toFloat()
            val h = case.height.toFloat()
            val d = case.detections
            val ref = d.boxes.indices.map { j ->
                val b = d.boxes[j]
                Detection(b[0].toFloat() * w, b[1].toFloat() * h, b[2].toFloat() * w, b[3].toFloat() * h,
                    d.scores[j].toFloat(), d.labels[j])
            }
            val got = post.run(outs).map { Detection(it.x1 * w, it.y1 * h, it.x2 * w, it.y2 * h, it.score, it.label) }
            if (detectionsMatch(ref, got, golden.maxDetections, tol.boxTolPx.toFloat(), tol.scoreTol.toFloat())) matched++
        }
        return result(images, if (raw) diff else null, nonFinite, matched, tol.minImagesMatched)
    }

    /** The largest finite |device - float| and whether every value is within tolerance, over some raw outputs. */
    class RawDifference(val maxAbsDiff: Double, val within: Boolean) {
        /** Both, over the outputs of both. */
        operator fun plus(o: RawDifference) = RawDifference(Math.max(maxAbsDiff, o.maxAbsDiff), within && o.within)

        companion object {
            /** Nothing compared yet. */
            val NONE = RawDifference(0.0, true)
        }
    }

    companion object {
        const val MANIFEST = "golden.json"

        fun readF32(bytes: ByteArray): FloatArray {
            val fb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            val out = FloatArray(fb.remaining())
            fb.get(out)
            return out
        }

        /**
         * One raw output against the float model's, in double: the largest finite |device - float|,
         * and within = every difference finite and <= atol + |rtol * device|.
         */
        fun rawDifference(device: FloatArray, float: FloatArray, atol: Double, rtol: Double): RawDifference {
            if (device.size != float.size)
                throw IllegalArgumentException("an output has ${device.size} values, the float one ${float.size}")
            var max = 0.0
            var within = true
            for (j in device.indices) {
                val got = device[j].toDouble()
                val diff = Math.abs(got - float[j].toDouble())
                if (diff.isNaN() || diff.isInfinite()) { within = false; continue }
                if (diff > max) max = diff
                if (diff > atol + Math.abs(rtol * got)) within = false
            }
            return RawDifference(max, within)
        }

        /** NaN and infinite values in a runtime's outputs; each one fails the check. */
        fun nonFinite(outputs: List<FloatArray>): Int {
            var n = 0
            for (o in outputs) for (v in o) if (v.isNaN() || v.isInfinite()) n++
            return n
        }

        /** The verdict: nothing non-finite, raw outputs within tolerance (null: none, NMS in the graph), enough images matched. */
        fun passed(nonFinite: Int, rawWithinTolerance: Boolean?, matched: Int, minImagesMatched: Int): Boolean =
            nonFinite == 0 && rawWithinTolerance != false && matched >= minImagesMatched

        /** The result of a check over `images` images; `raw` null with NMS in the graph. */
        fun result(images: Int, raw: RawDifference?, nonFinite: Int, matched: Int, minImagesMatched: Int): DriftResult =
            DriftResult(
                images = images,
                maxAbsDiffRaw = raw?.maxAbsDiff,
                rawWithinTolerance = raw?.within,
                nonFinite = nonFinite,
                detectionsMatched = matched,
                minImagesMatched = minImagesMatched,
                passed = passed(nonFinite, raw?.within, matched, minImagesMatched))

        /**
         * ssdmobile.validate.detections_match, line for line: every reference detection (boxes in
         * pixels) has its own counterpart (same label, score within scoreTol, every corner within
         * boxTolPx), taken greedily in reference order, and nothing is left over; when either list
         * is full (maxDetections), detections scoring within scoreTol of the lowest score may fall
         * either side of the cut.
         */
        fun detectionsMatch(ref: List<Detection>, got: List<Detection>, maxDetections: Int, boxTolPx: Float,
                            scoreTol: Float): Boolean {
            if (ref.isEmpty() || got.isEmpty()) return ref.size == got.size
            val used = BooleanArray(got.size)
            val unmatchedRef = ArrayList<Int>()
            for ((i, r) in ref.withIndex()) {
                var found = -1
                for ((j, g) in got.withIndex()) {
                    if (!used[j] && r.label == g.label && Math.abs(r.score - g.score) <= scoreTol &&
                        maxCornerDiff(r, g) <= boxTolPx) { found = j; break }
                }
                if (found >= 0) used[found] = true else unmatchedRef.add(i)
            }
            var lowest = Float.POSITIVE_INFINITY
            for (d in ref) lowest = Math.min(lowest, d.score)
            for (d in got) lowest = Math.min(lowest, d.score)
            val cut = lowest.toDouble() + scoreTol
            val full = ref.size >= maxDetections || got.size >= maxDetections
            fun nearCut(s: Float) = full && s.toDouble() <= cut
            return unmatchedRef.all { nearCut(ref[it].score) } && got.indices.filter { !used[it] }.all { nearCut(got[it].score) }
        }

        private fun maxCornerDiff(p: Detection, q: Detection): Float = Math.max(
            Math.max(Math.abs(p.x1 - q.x1), Math.abs(p.y1 - q.y1)), Math.max(Math.abs(p.x2 - q.x2), Math.abs(p.y2 - q.y2)))
    }
}

/** One line for the screen and the log: PASS/FAIL, the raw difference, the images matched. */
fun DriftResult.summary(): String {
    val sb = StringBuilder(if (passed) "PASS" else "FAIL")
    val maxDiff = maxAbsDiffRaw
    if (maxDiff != null) sb.append(String.format(java.util.Locale.US, ": max raw difference %.2e%s", maxDiff,
        if (rawWithinTolerance == true) " (within tolerance)" else " (OUT of tolerance)"))
    sb.append(if (maxDiff != null) ", " else ": ")
    sb.append("detections match on $detectionsMatched/$images images (at least $minImagesMatched needed)")
    if (nonFinite > 0) sb.append(", $nonFinite NaN/infinite outputs")
    return sb.toString()
}

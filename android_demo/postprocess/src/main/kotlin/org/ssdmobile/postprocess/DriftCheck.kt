package org.ssdmobile.postprocess

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The on-device drift check: the golden data `ssdmobile export --golden N` attaches to an artifact
 * (ssdmobile/drift.py: `<stem>.golden/golden.json` and its files) is run through the phone's
 * runtime, and the outputs are compared with the float model's. One rule, shared with the Python
 * side (ssdmobile.drift.compare) and the iOS app (DriftCheck.swift):
 *  - raw outputs (no NMS in the graph) pass when every value is finite and
 *    |device - float| <= atol + rtol * |device| (ExecuTorch BundledProgram's rule), in double;
 *  - detections (decoded here by [Postprocessor], exactly as the app does) match the float
 *    model's image by image as ssdmobile.validate.detections_match decides, with the golden
 *    score and box tolerances; at least minImagesMatched images must match;
 *  - any NaN or infinite output fails the check.
 * The app feeds [check] what its runtime returned; tests feed it what ExecuTorch's Python
 * runtime returned for a real exported program (DriftCheckTest).
 */
class DriftCheck(val golden: ArtifactGolden, val sidecar: Sidecar, private val read: (String) -> ByteArray) {
    init {
        if (golden.artifact != sidecar.artifact)
            throw SidecarException("golden data is for ${golden.artifact}, not ${sidecar.artifact}")
        if (golden.nmsInGraph != sidecar.nms.inGraph)
            throw SidecarException("golden data and sidecar of ${sidecar.artifact} disagree on NMS in the graph")
    }

    val images: Int get() = golden.images.size

    /** Image i's input as the artifact takes it (float32; see [ArtifactGolden.input]). */
    fun input(i: Int): FloatArray {
        val case = golden.images[i]
        if (golden.input.dtype != "float32")
            throw SidecarException("${case.input}: ${golden.input.dtype} golden inputs are for image-input (Core ML) artifacts")
        return readF32(read(case.input))
    }

    /** `outputs[i]`: the runtime's outputs for image i, flat, in the sidecar's output order. */
    fun check(outputs: List<List<FloatArray>>): DriftResult {
        if (outputs.size != images) throw IllegalArgumentException("${outputs.size} output sets for $images golden images")
        val tol = golden.tolerances
        val post = Postprocessor(sidecar)
        val raw = !golden.nmsInGraph
        var maxDiff = 0.0
        var within = true
        var nonFinite = 0
        var matched = 0
        for ((i, case) in golden.images.withIndex()) {
            val outs = outputs[i]
            var finite = true
            for (o in outs) for (v in o) if (v.isNaN() || v.isInfinite()) { nonFinite++; finite = false }
            if (raw) {
                val files = case.floatOutputs ?: throw SidecarException("${case.image}: golden data has no float outputs")
                for ((k, name) in files.withIndex()) {
                    val want = readF32(read(name))
                    val got = outs[k]
                    if (got.size != want.size) throw IllegalArgumentException("${case.image}: output $k has ${got.size} values, float has ${want.size}")
                    for (j in got.indices) {
                        val diff = Math.abs(got[j].toDouble() - want[j].toDouble())
                        if (diff.isNaN() || diff.isInfinite()) { within = false; continue }
                        if (diff > maxDiff) maxDiff = diff
                        if (diff > tol.atol + Math.abs(tol.rtol * got[j].toDouble())) within = false
                    }
                }
            }
            if (!finite) continue
            val w = case.width.toFloat()
            val h = case.height.toFloat()
            val ref = case.detections.boxes.indices.map { j ->
                val b = case.detections.boxes[j]
                Detection(b[0] * w, b[1] * h, b[2] * w, b[3] * h, case.detections.scores[j], case.detections.labels[j])
            }
            val got = post.run(outs).map { Detection(it.x1 * w, it.y1 * h, it.x2 * w, it.y2 * h, it.score, it.label) }
            if (detectionsMatch(ref, got, golden.maxDetections, tol.boxTolPx.toFloat(), tol.scoreTol.toFloat())) matched++
        }
        val rawOk: Boolean? = if (raw) within else null
        val passed = nonFinite == 0 && rawOk != false && matched >= tol.minImagesMatched
        return DriftResult(images, if (raw) maxDiff else null, rawOk, nonFinite, matched, tol.minImagesMatched, passed)
    }

    companion object {
        const val FORMAT = "ssdmobile-artifact-golden"
        const val VERSION = 1
        const val MANIFEST = "golden.json"

        fun parse(text: String, source: String = MANIFEST): ArtifactGolden {
            val tree = JsonMapping.parseStrict(text, source)
            if (!tree.isJsonObject) throw SidecarException("$source: top level must be a JSON object")
            val format = tree.asJsonObject.get("format")
            if (format == null || !format.isJsonPrimitive || format.asString != FORMAT)
                throw SidecarException("$source: not ssdmobile golden data (no \"format\": \"$FORMAT\")")
            val golden = JsonMapping.map(tree, ArtifactGolden::class.java, source)
            if (golden.version > VERSION)
                throw SidecarException("$source: golden data version ${golden.version} is newer than this app understands; update the app")
            return golden
        }

        fun readF32(bytes: ByteArray): FloatArray {
            val fb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            val out = FloatArray(fb.remaining())
            fb.get(out)
            return out
        }

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
            val cut = Math.min(ref.map { it.score }.min()!!.toDouble(), got.map { it.score }.min()!!.toDouble()) + scoreTol
            val full = ref.size >= maxDetections || got.size >= maxDetections
            fun nearCut(s: Float) = full && s.toDouble() <= cut
            return unmatchedRef.all { nearCut(ref[it].score) } && got.indices.filter { !used[it] }.all { nearCut(got[it].score) }
        }

        private fun maxCornerDiff(p: Detection, q: Detection): Float = Math.max(
            Math.max(Math.abs(p.x1 - q.x1), Math.abs(p.y1 - q.y1)), Math.max(Math.abs(p.x2 - q.x2), Math.abs(p.y2 - q.y2)))
    }
}

/** What a drift check found; written into the device result (BenchResult) as its "drift". */
class DriftResult(
    val images: Int,
    /** largest |device - float| over the raw outputs; null with NMS in the graph */
    val maxAbsDiffRaw: Double?,
    val rawWithinTolerance: Boolean?,
    val nonFinite: Int,
    val detectionsMatched: Int,
    val minImagesMatched: Int,
    val passed: Boolean
) {
    fun summary(): String = buildString {
        append(if (passed) "PASS" else "FAIL")
        if (maxAbsDiffRaw != null) append(String.format(java.util.Locale.US, ": max raw difference %.2e%s", maxAbsDiffRaw,
            if (rawWithinTolerance == true) " (within tolerance)" else " (OUT of tolerance)"))
        append(if (maxAbsDiffRaw != null) ", " else ": ")
        append("detections match on $detectionsMatched/$images images (at least $minImagesMatched needed)")
        if (nonFinite > 0) append(", $nonFinite NaN/infinite outputs")
    }
}

/** golden.json as ssdmobile/drift.py writes it; fields the app does not need are not mapped. */
class ArtifactGolden(
    val format: String,
    val version: Int,
    val artifact: String,
    val artifactSha256: String,
    val model: String,
    @OneOf("fp32", "fp16", "int8") val precision: String,
    val nmsInGraph: Boolean,
    val input: GoldenInput,
    val maxDetections: Int,
    val images: List<GoldenCase>,
    val tolerances: DriftTolerances,
    /** what the exporting machine's runtime measured on the same inputs; null where it cannot run */
    @MayBeNull val host: HostDrift?
)

class GoldenInput(
    val name: String,
    @Length(4) val shape: IntArray,
    @OneOf("NCHW", "NHWC", "image_RGB") val layout: String,
    /** float32: the stored input is the tensor itself; uint8: an RGB image already at the model's size */
    @OneOf("float32", "uint8") val dtype: String
)

class GoldenCase(
    val image: String,
    val width: Int,
    val height: Int,
    /** file of the input, beside golden.json */
    val input: String,
    /** files of the float model's raw outputs in the sidecar's output order; null with NMS in the graph */
    @MayBeNull val floatOutputs: List<String>?,
    val detections: GoldenDetectionList
)

class GoldenDetectionList(
    val count: Int,
    /** normalized x1, y1, x2, y2 */
    @Length(rows = 4) val boxes: Array<FloatArray>,
    val scores: FloatArray,
    val labels: IntArray
)

class DriftTolerances(
    val rtol: Double,
    val atol: Double,
    val scoreTol: Double,
    val boxTolPx: Double,
    val minImagesMatched: Int,
    val why: String
)

class HostDrift(
    val runtime: String,
    @MayBeNull val maxAbsDiffRaw: Double?,
    val detectionsMatched: Int,
    val images: Int,
    val passed: Boolean
)

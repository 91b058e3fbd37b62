package org.ssdmobile.postprocess

import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

/**
 * Every case of every section of every tests/vectors file (the generated [TestVectors]; the folder is
 * passed as -Dvectors.dir), run through this module's code: the same cases the Python reference
 * (tests/test_vectors.py) and the Swift package run. Cases are never listed here by name: a new
 * entry in a file is a new check. Floats within each case's `tolerance` (absolute); labels,
 * counts, booleans and latencies exact; drift's max_abs_diff_raw exact up to the JSON round trip.
 */
class VectorsTest {
    private fun files(): List<File> {
        val dir = System.getProperty("vectors.dir") ?: System.getenv("SSDMOBILE_VECTORS_DIR")
            ?: throw AssertionError("no test vectors: run android_demo/postprocess/test.sh (-Dvectors.dir=tests/vectors)")
        val files = File(dir).listFiles { f -> f.isFile && f.name.endsWith(".json") }?.sortedBy { it.name } ?: emptyList()
        if (files.isEmpty()) throw AssertionError("no test vectors in $dir (*.json)")
        return files
    }

    /** What went wrong in one case; the test reports every failing case, then fails. */
    private class Failures {
        val lines = ArrayList<String>()
        var cases = 0
        var where = ""

        fun check(ok: Boolean, what: () -> String) {
            if (!ok) lines.add("$where: ${what()}")
        }

        fun close(got: Float, want: Double, tol: Double, what: String) =
            check(Math.abs(got.toDouble() - want) <= tol) { "$what: got $got, expected $want (tolerance $tol)" }

        fun close(got: FloatArray, want: List<List<Double>>, tol: Double, what: String) {
            val width = if (want.isEmpty()) 0 else want[0].size
            if (got.size != want.size * width) {
                check(false) { "$what: ${got.size} values, expected ${want.size} x $width" }
                return
            }
            for (i in got.indices) close(got[i], want[i / width][i % width], tol, "$what[${i / width}][${i % width}]")
        }
    }

    private fun detection(d: VectorDetection) =
        Detection(d.box[0].toFloat(), d.box[1].toFloat(), d.box[2].toFloat(), d.box[3].toFloat(), d.score.toFloat(), d.label)

    private fun decode(c: DecodeCase, f: Failures) {
        val coder = c.boxCoder
        val boxes = BoxDecoder.decode(c.boxEncodings.flattenRows(4), c.anchors.flattenRows(4), coder.weights.toFloats(),
            coder.order, coder.clamp?.toFloat())
        f.close(boxes, c.expectedBoxes, c.tolerance, "boxes")
        val classes = if (c.classLogits.isEmpty()) 1 else c.classLogits[0].size
        val scores = BoxDecoder.scores(c.classLogits.flattenRows(classes), classes, c.score)
        f.close(scores, c.expectedScores, c.tolerance, "scores")
    }

    private fun nms(c: NmsCase, f: Failures) {
        val classes = if (c.scores.isEmpty()) 1 else c.scores[0].size
        val cfg = c.config
        val got = Nms.nmsPerClass(c.boxes.flattenRows(4), c.scores.flattenRows(classes), classes, cfg.iouThresh.toFloat(),
            cfg.scoreThresh.toFloat(), cfg.topkCandidates, cfg.maxPerClass, cfg.maxDetections)
        f.check(got.map { it.label } == c.expected.map { it.label }) {
            "labels ${got.map { it.label }}, expected ${c.expected.map { it.label }} (got $got)"
        }
        for ((i, w) in c.expected.withIndex()) {
            if (i >= got.size) break
            val g = got[i]
            val box = floatArrayOf(g.x1, g.y1, g.x2, g.y2)
            for (k in 0 until 4) f.close(box[k], w.box[k], c.tolerance, "detection $i box[$k]")
            f.close(g.score, w.score, c.tolerance, "detection $i score")
        }
    }

    private fun match(c: MatchCase, f: Failures) {
        val got = DriftCheck.detectionsMatch(c.reference.map { detection(it) }, c.candidate.map { detection(it) },
            c.maxDetections, c.boxTolPx.toFloat(), c.scoreTol.toFloat())
        f.check(got == c.expected) { "detectionsMatch says $got, expected ${c.expected}" }
    }

    private fun drift(c: DriftCase, f: Failures) {
        val raw = c.images.any { it.floatOutputs != null }
        var diff = DriftCheck.RawDifference.NONE
        var nonFinite = 0
        var matched = 0
        for ((i, im) in c.images.withIndex()) {
            val device = im.deviceOutputs.map { it.toFloats() }  // what the app holds: float32
            for (nf in im.nonFinite) device[nf.output][nf.index] = when (nf.value) {
                "nan" -> Float.NaN
                "inf" -> Float.POSITIVE_INFINITY
                "-inf" -> Float.NEGATIVE_INFINITY
                else -> throw AssertionError("image $i: unknown non-finite value ${nf.value}")
            }
            val bad = DriftCheck.nonFinite(device)
            nonFinite += bad
            if (raw) {
                val float = im.floatOutputs ?: throw AssertionError("image $i has no float_outputs, others have")
                if (float.size != device.size) throw AssertionError("image $i: ${device.size} device outputs, ${float.size} float")
                for (k in device.indices) diff += DriftCheck.rawDifference(device[k], float[k].toFloats(), c.atol, c.rtol)
            }
            if (bad == 0 && im.detectionsMatch) matched++
        }
        val r = DriftCheck.result(c.images.size, if (raw) diff else null, nonFinite, matched, c.minImagesMatched)
        val e = c.expected
        val wantDiff = e.maxAbsDiffRaw
        val gotDiff = r.maxAbsDiffRaw
        if (wantDiff == null || gotDiff == null) f.check(wantDiff == gotDiff) { "max_abs_diff_raw $gotDiff, expected $wantDiff" }
        else f.check(Math.abs(gotDiff - wantDiff) <= 1e-12 * Math.max(1.0, wantDiff)) {
            "max_abs_diff_raw $gotDiff, expected $wantDiff"
        }
        f.check(r.rawWithinTolerance == e.rawWithinTolerance) { "raw_within_tolerance ${r.rawWithinTolerance}, expected ${e.rawWithinTolerance}" }
        f.check(r.nonFinite == e.nonFinite) { "non_finite ${r.nonFinite}, expected ${e.nonFinite}" }
        f.check(r.detectionsMatched == e.detectionsMatched) { "detections_matched ${r.detectionsMatched}, expected ${e.detectionsMatched}" }
        f.check(r.passed == e.passed) { "passed ${r.passed}, expected ${e.passed} (${r.summary()})" }
    }

    private fun preview(c: PreviewCase, f: Failures) {
        val d = Detection(c.box[0].toFloat(), c.box[1].toFloat(), c.box[2].toFloat(), c.box[3].toFloat(), 1f, 1)
        val r = PreviewMapping.toView(d, c.srcWidth, c.srcHeight, c.viewWidth, c.viewHeight,
            PreviewMapping.scaleMode(c.mode), c.mirror)
        val got = floatArrayOf(r.left, r.top, r.right, r.bottom)
        for (k in 0 until 4) f.close(got[k], c.expected[k], c.tolerance, "rect[$k]")
    }

    private fun latency(c: LatencyCase, f: Failures) {
        val s = LatencyStats(DoubleArray(c.timesMs.size) { c.timesMs[it] })
        f.check(s.medianMs == c.expectedMedian) { "median ${s.medianMs}, expected ${c.expectedMedian}" }
        f.check(s.p90Ms == c.expectedP90) { "p90 ${s.p90Ms}, expected ${c.expectedP90}" }
    }

    private fun <T> run(f: Failures, file: File, section: String, cases: List<T>, name: (T) -> String, body: (T, Failures) -> Unit) {
        for (c in cases) {
            f.cases++
            f.where = "${file.name} $section '${name(c)}'"
            try {
                body(c, f)
            } catch (e: Exception) {
                f.lines.add("${f.where}: ${e.javaClass.simpleName}: ${e.message}")
            } catch (e: AssertionError) {
                f.lines.add("${f.where}: ${e.message}")
            }
        }
    }

    @Test
    fun everyCaseOfEveryFile() {
        val f = Failures()
        val perSection = LinkedHashMap<String, Int>()
        for (file in files()) {
            val v = TestVectors.parse(file.readText(), file.path)
            run(f, file, "decode", v.decode, { it.name }) { c, x -> decode(c, x) }
            run(f, file, "nms", v.nms, { it.name }) { c, x -> nms(c, x) }
            run(f, file, "match", v.match, { it.name }) { c, x -> match(c, x) }
            run(f, file, "drift", v.drift, { it.name }) { c, x -> drift(c, x) }
            run(f, file, "preview", v.preview, { it.name }) { c, x -> preview(c, x) }
            run(f, file, "latency", v.latency, { it.name }) { c, x -> latency(c, x) }
            for ((section, n) in listOf("decode" to v.decode.size, "nms" to v.nms.size, "match" to v.match.size,
                    "drift" to v.drift.size, "preview" to v.preview.size, "latency" to v.latency.size))
                perSection[section] = (perSection[section] ?: 0) + n
        }
        println("test vectors: ${f.cases} cases " + perSection.entries.joinToString(", ", "(", ")") { "${it.key} ${it.value}" } +
            ", ${f.lines.size} failing")
        assertTrue("the vector files hold no case", f.cases > 0)
        if (f.lines.isNotEmpty()) fail("${f.lines.size} vector check(s) failed:\n  " + f.lines.joinToString("\n  "))
    }
}

package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

/**
 * The Kotlin preprocessing, decode and NMS against the Python reference on real images. The
 * reference directories are written by `ssdmobile golden` (tests/phone_fixtures.sh: OUT/reference/NAME,
 * each a reference.json read as the generated [ReferenceData], its sidecar.json and tensors) and
 * passed as the system property golden.dirs (comma separated). Everything is recomputed here from
 * the raw tensors and the sidecar; boxes and scores must match to 1e-4, labels and counts exactly.
 */
class GoldenTest {
    companion object {
        const val TOL = 1e-4f
        const val REFERENCE = "reference.json"

        fun goldenDirs(): List<File> {
            val prop = System.getProperty("golden.dirs") ?: System.getenv("SSDMOBILE_GOLDEN_DIRS")
                ?: throw AssertionError("no reference data: run android_demo/postprocess/test.sh, which passes " +
                    "-Dgolden.dirs=DIR[,DIR...] (tests/phone_fixtures.sh OUT writes them under OUT/reference)")
            val dirs = prop.split(",").filter { it.isNotBlank() }.map { File(it) }
            assertTrue("golden.dirs names no directory", dirs.isNotEmpty())
            for (d in dirs) assertTrue("reference dir $d has no $REFERENCE", File(d, REFERENCE).isFile)
            return dirs
        }

        fun readF32(f: File): FloatArray = DriftCheck.readF32(f.readBytes())
    }

    class Case(val dir: File, val sidecar: Sidecar, val image: ReferenceImage) {
        val name: String get() = "${dir.name}/${image.image}"
        fun file(ref: TensorFile) = File(dir, ref.file)
    }

    private fun cases(): List<Case> = goldenDirs().flatMap { dir ->
        val reference = ReferenceData.parse(File(dir, REFERENCE).readText(), "$dir/$REFERENCE")
        val sidecar = Sidecar.parse(File(dir, reference.sidecar).readText(), "$dir/${reference.sidecar}")
        assertTrue("$dir: no images", reference.images.isNotEmpty())
        assertFalse("$dir: the reference runs NMS in the app", sidecar.nms.inGraph)
        reference.images.map { Case(dir, sidecar, it) }
    }

    private fun expected(c: Case): List<Detection> {
        val d = c.image.detections
        assertEquals(d.count, d.scores.size)
        return d.scores.indices.map { i ->
            val b = d.boxes[i]
            Detection(b[0].toFloat(), b[1].toFloat(), b[2].toFloat(), b[3].toFloat(), d.scores[i].toFloat(), d.labels[i])
        }
    }

    private fun boxDiff(p: Detection, q: Detection): Float = maxOf(
        maxOf(Math.abs(p.x1 - q.x1), Math.abs(p.y1 - q.y1)), maxOf(Math.abs(p.x2 - q.x2), Math.abs(p.y2 - q.y2)))

    @Test
    fun detectionsMatchPythonReference() {
        var worstBox = 0f
        var worstScore = 0f
        var total = 0
        for (c in cases()) {
            val enc = readF32(c.file(c.image.boxEncodings))
            val logits = readF32(c.file(c.image.classLogits))
            val got = Postprocessor(c.sidecar).fromRaw(enc, logits)
            val want = expected(c)
            assertEquals("${c.name}: detection count", want.size, got.size)
            // The sorted score sequences must agree position by position ...
            for (i in want.indices) {
                val ds = Math.abs(got[i].score - want[i].score)
                assertTrue("${c.name}: score #$i ${got[i].score} vs ${want[i].score}", ds <= TOL)
            }
            // ... and every reference detection has its own twin (same label, box and score within
            // TOL); looked up rather than compared by index because near-equal scores may sort
            // either way in float32.
            val used = BooleanArray(got.size)
            for ((i, w) in want.withIndex()) {
                var j = if (!used[i] && got[i].label == w.label && boxDiff(got[i], w) <= TOL &&
                    Math.abs(got[i].score - w.score) <= TOL) i else -1
                if (j < 0) j = got.indices.firstOrNull { k ->
                    !used[k] && got[k].label == w.label && boxDiff(got[k], w) <= TOL &&
                        Math.abs(got[k].score - w.score) <= TOL
                } ?: -1
                if (j < 0) fail("${c.name}: reference detection #$i $w has no match in the Kotlin output " +
                    "(Kotlin #$i: ${got[i]})")
                used[j] = true
                worstBox = maxOf(worstBox, boxDiff(got[j], w))
                worstScore = maxOf(worstScore, Math.abs(got[j].score - w.score))
            }
            total += want.size
        }
        println("reference detections: $total matched, max |box diff| $worstBox, max |score diff| $worstScore (tolerance $TOL)")
    }

    @Test
    fun preprocessingMatchesPythonReference() {
        var worst = 0f
        for (c in cases()) {
            val w = c.image.width
            val h = c.image.height
            val rgb = c.file(c.image.rgb).readBytes()
            assertEquals(listOf(h, w, 3), c.image.rgb.shape)
            assertEquals("uint8", c.image.rgb.dtype)
            assertEquals(w * h * 3, rgb.size)
            val argb = IntArray(w * h) { i ->
                (0xFF shl 24) or ((rgb[3 * i].toInt() and 0xFF) shl 16) or
                    ((rgb[3 * i + 1].toInt() and 0xFF) shl 8) or (rgb[3 * i + 2].toInt() and 0xFF)
            }
            val want = readF32(c.file(c.image.input))
            val got = Preprocessor(c.sidecar).run(argb, w, h)
            assertEquals(want.size, got.size)
            assertEquals(c.image.input.shape.fold(1) { a, b -> a * b }, got.size)
            // measured in pixel units of [0, 1] (times the channel's std): a caffe-style input
            // (std 1/255, SSD300 VGG16) has values near 255, where float32 rounding alone is ~3e-5
            val std = c.sidecar.preprocess.std
            val plane = got.size / 3
            var diff = 0f
            for (i in want.indices) diff = maxOf(diff, Math.abs(want[i] - got[i]) * std[i / plane].toFloat())
            assertTrue("${c.name}: preprocessed input differs by $diff", diff <= TOL)
            worst = maxOf(worst, diff)

            // the same pixels in NHWC, for artifacts whose sidecar says so
            val s = c.sidecar
            val nhwcInput = s.input.copy(shape = listOf(1, s.preprocess.height, s.preprocess.width, 3), layout = "NHWC")
            val nhwc = Preprocessor(s.copy(input = nhwcInput)).run(argb, w, h)
            val ph = s.preprocess.height
            val pw = s.preprocess.width
            for (ch in 0 until 3) for (y in 0 until ph) for (x in 0 until pw)
                assertEquals(got[(ch * ph + y) * pw + x], nhwc[(y * pw + x) * 3 + ch], 0f)
        }
        println("reference preprocessing: max |input diff| x std $worst (tolerance $TOL)")
    }

    @Test
    fun pixelBoxesMatchDetectorOutput() {
        for (c in cases()) {
            val w = c.image.width
            val h = c.image.height
            val px = c.image.detections.boxesPixels
            for ((i, d) in expected(c).withIndex()) {
                val r = PreviewMapping.toImagePixels(d, w, h)
                val b = px[i].toFloats()
                val diff = maxOf(maxOf(Math.abs(r.left - b[0]), Math.abs(r.top - b[1])),
                    maxOf(Math.abs(r.right - b[2]), Math.abs(r.bottom - b[3])))
                assertTrue("${c.name}: pixel box #$i differs by $diff", diff <= TOL * maxOf(w, h))
                // FILL into a view the image's own size is the identity mapping
                val v = PreviewMapping.toView(d, w, h, w, h, ScaleMode.FILL)
                assertEquals(r.left, v.left, 1e-3f)
                assertEquals(r.bottom, v.bottom, 1e-3f)
            }
        }
    }
}

package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The Kotlin post-processing against the Python reference on real images. The golden
 * directories are written by `ssdmobile golden` (see test.sh) and passed as the system property
 * golden.dirs (comma separated). Everything is recomputed here from the raw tensors and the
 * sidecar; boxes and scores must match to 1e-4, labels and counts exactly.
 */
class GoldenTest {
    companion object {
        const val TOL = 1e-4f

        fun goldenDirs(): List<File> {
            val prop = System.getProperty("golden.dirs") ?: System.getenv("SSDMOBILE_GOLDEN_DIRS")
                ?: throw AssertionError("no golden files: run android_demo/postprocess/test.sh, which writes them " +
                    "with `ssdmobile golden` and passes -Dgolden.dirs=DIR[,DIR...]")
            val dirs = prop.split(",").filter { it.isNotBlank() }.map { File(it) }
            for (d in dirs) assertTrue("golden dir $d has no golden.json", File(d, "golden.json").isFile)
            return dirs
        }

        fun readF32(f: File): FloatArray {
            val bb = ByteBuffer.wrap(f.readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            val out = FloatArray(bb.remaining())
            bb.get(out)
            return out
        }
    }

    class Case(val dir: File, val sidecar: Sidecar, val image: GoldenImage) {
        val name: String get() = "${dir.name}/${image.image}"
        fun file(ref: GoldenFile) = File(dir, ref.file)
    }

    private fun cases(): List<Case> = goldenDirs().flatMap { dir ->
        val manifest = JsonMapping.read(File(dir, "golden.json").readText(), "$dir/golden.json", GoldenManifest::class.java)
        assertEquals("ssdmobile-golden", manifest.format)
        val sidecar = Sidecar.parse(File(dir, manifest.sidecar).readText(), "$dir/${manifest.sidecar}")
        assertTrue("$dir: no images", manifest.images.isNotEmpty())
        manifest.images.map { Case(dir, sidecar, it) }
    }

    private fun expected(c: Case): List<Detection> {
        val d = c.image.detections
        assertEquals(d.count, d.scores.size)
        return d.scores.indices.map { i ->
            val b = d.boxes[i]
            Detection(b[0], b[1], b[2], b[3], d.scores[i], d.labels[i])
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
        println("golden detections: $total matched, max |box diff| $worstBox, max |score diff| $worstScore (tolerance $TOL)")
    }

    @Test
    fun preprocessingMatchesPythonReference() {
        var worst = 0f
        for (c in cases()) {
            val w = c.image.width
            val h = c.image.height
            val rgb = c.file(c.image.rgb).readBytes()
            assertEquals(w * h * 3, rgb.size)
            val argb = IntArray(w * h) { i ->
                (0xFF shl 24) or ((rgb[3 * i].toInt() and 0xFF) shl 16) or
                    ((rgb[3 * i + 1].toInt() and 0xFF) shl 8) or (rgb[3 * i + 2].toInt() and 0xFF)
            }
            val want = readF32(c.file(c.image.input))
            val got = Preprocessor(c.sidecar).run(argb, w, h)
            assertEquals(want.size, got.size)
            // measured in pixel units of [0, 1] (times the channel's std): a caffe-style input
            // (std 1/255, SSD300 VGG16) has values near 255, where float32 rounding alone is ~3e-5
            val std = c.sidecar.preprocess.std
            val plane = got.size / 3
            var diff = 0f
            for (i in want.indices) diff = maxOf(diff, Math.abs(want[i] - got[i]) * std[i / plane])
            assertTrue("${c.name}: preprocessed input differs by $diff", diff <= TOL)
            worst = maxOf(worst, diff)

            // the same pixels in NHWC, for artifacts whose sidecar says so
            val s = c.sidecar
            val nhwcInput = InputSpec(s.input.name, intArrayOf(1, s.preprocess.height, s.preprocess.width, 3), "NHWC", "float32")
            val nhwc = Preprocessor(Sidecar(s.model, s.target, s.precision, s.artifact, nhwcInput, s.preprocess,
                s.classNames, s.outputs, s.decode, s.nms)).run(argb, w, h)
            val ph = s.preprocess.height
            val pw = s.preprocess.width
            for (ch in 0 until 3) for (y in 0 until ph) for (x in 0 until pw)
                assertEquals(got[(ch * ph + y) * pw + x], nhwc[(y * pw + x) * 3 + ch], 0f)
        }
        println("golden preprocessing: max |input diff| x std $worst (tolerance $TOL)")
    }

    @Test
    fun pixelBoxesMatchDetectorOutput() {
        for (c in cases()) {
            val w = c.image.width
            val h = c.image.height
            val px = c.image.detections.boxesPixels
            for ((i, d) in expected(c).withIndex()) {
                val r = PreviewMapping.toImagePixels(d, w, h)
                val b = px[i]
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

/** golden.json as `ssdmobile golden` writes it (ssdmobile/golden.py), mapped by Gson like the sidecar. */
class GoldenManifest(val format: String, val sidecar: String, val images: List<GoldenImage>)

class GoldenImage(
    val image: String,
    val width: Int,
    val height: Int,
    val rgb: GoldenFile,
    val input: GoldenFile,
    val boxEncodings: GoldenFile,
    val classLogits: GoldenFile,
    val detections: GoldenDetections
)

class GoldenFile(val file: String)

class GoldenDetections(
    val count: Int,
    @Length(rows = 4) val boxes: Array<FloatArray>,
    val scores: FloatArray,
    val labels: IntArray,
    @Length(rows = 4) val boxesPixels: Array<FloatArray>
)

package org.ssdmobile.postprocess

import com.google.gson.JsonParser
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * Camera bytes in: a program exported with `ssdmobile export --input uint8` takes uint8 RGB
 * [1, H, W, 3] at the model's size and normalizes in its graph. The app's side of it is
 * [Preprocessor] (resize only, no normalization) then [RuntimeTensors.toUint8] (round half to
 * even, clamp): from a decoded image's pixels it must make exactly the bytes the host made
 * (the golden input, Detector.pixels), and the program's outputs on them pass the drift check.
 * Fixtures: tests/drift_fixtures.py, case person_u8_fp32, with the decoded golden images.
 */
class PixelInputTest {
    private class U8Case(val check: DriftCheck, val sidecar: Sidecar, val dir: File, val outputs: List<List<FloatArray>>)

    private fun case(): U8Case {
        val dir = System.getProperty("drift.dir") ?: System.getenv("SSDMOBILE_DRIFT_DIR")
            ?: throw AssertionError("no drift fixtures: run android_demo/postprocess/test.sh (-Ddrift.dir=OUT/drift)")
        val listing = JsonParser.parseString(File(dir, "cases.json").readText()).asJsonObject.getAsJsonArray("cases")
        val c = listing.map { it.asJsonObject }.firstOrNull { it.get("name").asString == "person_u8_fp32" }
            ?: throw AssertionError("$dir/cases.json has no person_u8_fp32 case (tests/drift_fixtures.py)")
        val goldenFile = File(c.get("golden").asString)
        val sidecarFile = File(c.get("sidecar").asString)
        val sidecar = Sidecar.parse(sidecarFile.readText(), sidecarFile.path)
        val check = DriftCheck(ArtifactGolden.parse(goldenFile.readText(), goldenFile.path), sidecar) { name ->
            File(goldenFile.parentFile, name).readBytes()
        }
        val outFile = File(c.get("outputs").asString)
        val outputs = JsonParser.parseString(outFile.readText()).asJsonObject.getAsJsonArray("images").map { img ->
            img.asJsonObject.getAsJsonArray("outputs").map { DriftCheck.readF32(File(outFile.parentFile, it.asString).readBytes()) }
        }
        return U8Case(check, sidecar, sidecarFile.parentFile, outputs)
    }

    /** The decoded image (uint8 RGB [H, W, 3] as the host decoded it) as Bitmap.getPixels' ARGB ints. */
    private fun argb(dir: File, image: String): Triple<IntArray, Int, Int> {
        val stem = image.substringBeforeLast('.')
        val size = JsonParser.parseString(File(dir, "images/$stem.json").readText()).asJsonObject
        val w = size.get("width").asInt
        val h = size.get("height").asInt
        val rgb = File(dir, "images/$stem.rgb.u8").readBytes()
        assertEquals("$stem.rgb.u8 size", w * h * 3, rgb.size)
        val px = IntArray(w * h) { i ->
            val r = rgb[3 * i].toInt() and 0xFF
            val g = rgb[3 * i + 1].toInt() and 0xFF
            val b = rgb[3 * i + 2].toInt() and 0xFF
            (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        return Triple(px, w, h)
    }

    @Test
    fun theSidecarSaysCameraBytes() {
        val c = case()
        assertEquals("uint8", c.sidecar.input.dtype)
        assertEquals("NHWC", c.sidecar.input.layout)
        assertEquals(listOf(1, c.sidecar.preprocess.size[0], c.sidecar.preprocess.size[1], 3), c.sidecar.input.shape)
        assertTrue(c.sidecar.preprocess.inGraph)
        assertTrue(RuntimeTensors.isUint8Input(c.sidecar))
    }

    @Test
    fun theAppMakesTheHostsBytesFromTheImage() {
        val c = case()
        val pre = Preprocessor(c.sidecar)
        assertTrue("no golden images", c.check.images > 0)
        for (i in 0 until c.check.images) {
            val entry = c.check.golden.images[i]
            val (px, w, h) = argb(c.dir, entry.image)
            assertEquals(entry.width, w)
            assertEquals(entry.height, h)
            val mine = RuntimeTensors.toUint8(pre.run(px, w, h))
            val host = c.check.inputBytes(i)
            assertEquals(host.size, mine.size)
            val differ = host.indices.count { host[it] != mine[it] }
            println("camera bytes ${entry.image}: ${host.size - differ}/${host.size} bytes as the host made them")
            assertEquals("${entry.image}: bytes that differ from the host's", 0, differ)
            // what the benchmark screen hands the program: the very same bytes
            assertTrue(RuntimeTensors.toUint8(c.check.input(i)).contentEquals(host))
        }
    }

    @Test
    fun theProgramsOutputsOnThoseBytesPassTheDriftCheck() {
        val c = case()
        val r = c.check.check(c.outputs)
        println("drift person_u8_fp32: ${r.summary()}")
        assertTrue(r.summary(), r.passed)
        assertEquals(c.check.images, r.detectionsMatched)
    }
}

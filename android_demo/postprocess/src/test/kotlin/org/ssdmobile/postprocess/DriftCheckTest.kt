package org.ssdmobile.postprocess

import com.google.gson.JsonParser
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * The drift check on real programs: tests/drift_fixtures.py (run by tests/phone_fixtures.sh into
 * OUT/drift, passed as -Ddrift.dir) exports ExecuTorch programs with golden data (`ssdmobile export
 * --golden`), runs them with ExecuTorch's Python runtime on the golden inputs and saves the outputs
 * as the app holds them. The check must pass on the true program and fail on a perturbed one, and
 * find exactly what the Python side of the same check found. The rule's pieces on their own:
 * below and in VectorsTest (tests/vectors, section "drift").
 */
class DriftCheckTest {
    class Case(val name: String, val check: DriftCheck, val outputs: List<List<FloatArray>>, val expectPass: Boolean,
               val python: com.google.gson.JsonObject)

    private fun cases(): List<Case> {
        val dir = System.getProperty("drift.dir") ?: System.getenv("SSDMOBILE_DRIFT_DIR")
            ?: throw AssertionError("no drift fixtures: run android_demo/postprocess/test.sh (-Ddrift.dir=OUT/drift)")
        val listing = JsonParser.parseString(File(dir, "cases.json").readText()).asJsonObject.getAsJsonArray("cases")
        return listing.map { it.asJsonObject }.map { c ->
            val goldenFile = File(c.get("golden").asString)
            val golden = ArtifactGolden.parse(goldenFile.readText(), goldenFile.path)
            val sidecarFile = File(c.get("sidecar").asString)
            val sidecar = Sidecar.parse(sidecarFile.readText(), sidecarFile.path)
            val check = DriftCheck(golden, sidecar) { name -> File(goldenFile.parentFile, name).readBytes() }
            val outFile = File(c.get("outputs").asString)
            val images = JsonParser.parseString(outFile.readText()).asJsonObject.getAsJsonArray("images")
            val outputs = images.map { img ->
                img.asJsonObject.getAsJsonArray("outputs").map { DriftCheck.readF32(File(outFile.parentFile, it.asString).readBytes()) }
            }
            Case(c.get("name").asString, check, outputs, c.get("expect_pass").asBoolean, c.getAsJsonObject("python"))
        }
    }

    @Test
    fun passesOnTheTrueProgramAndFailsOnAPerturbedOne() {
        val all = cases()
        assertTrue("expected true and perturbed cases", all.any { it.expectPass } && all.any { !it.expectPass })
        for (c in all) {
            val r = c.check.check(c.outputs)
            println("drift ${c.name}: ${r.summary()}")
            assertEquals("${c.name}: ${r.summary()}", c.expectPass, r.passed)
            // the same numbers as the Python check on the same outputs
            val py = c.python
            assertEquals("${c.name}: matched images", py.get("detections_matched").asInt, r.detectionsMatched)
            assertEquals("${c.name}: non-finite", py.get("non_finite").asInt, r.nonFinite)
            assertEquals("${c.name}: min matched", py.get("min_images_matched").asInt, r.minImagesMatched)
            if (py.get("max_abs_diff_raw").isJsonNull) assertNull(r.maxAbsDiffRaw)
            else assertEquals("${c.name}: max raw diff", py.get("max_abs_diff_raw").asDouble, r.maxAbsDiffRaw!!, 0.0)
            if (!py.get("raw_within_tolerance").isJsonNull)
                assertEquals(py.get("raw_within_tolerance").asBoolean, r.rawWithinTolerance)
        }
    }

    @Test
    fun nanOrInfinityFailsTheCheck() {
        val c = cases().first { it.expectPass && !it.check.golden.nmsInGraph }
        val broken = c.outputs.mapIndexed { i, outs ->
            outs.mapIndexed { k, o -> if (i == 0 && k == 0) o.copyOf().also { it[5] = Float.NaN } else o }
        }
        val r = c.check.check(broken)
        assertFalse(r.passed)
        assertEquals(1, r.nonFinite)
        assertEquals(false, r.rawWithinTolerance)
        assertTrue(r.summary().contains("NaN"))
    }

    @Test
    fun goldenInputsAreTheTensorsThePythonRuntimeRan() {
        val c = cases().first { it.name == "person_fp32" }
        val x = c.check.input(0)
        assertEquals(c.check.golden.input.shape.fold(1) { a, b -> a * b }, x.size)
        assertTrue(x.all { !it.isNaN() })
        assertEquals(c.check.golden.artifact, c.check.sidecar.artifact)
    }

    @Test
    fun aGoldenFolderOfAnotherArtifactIsRefused() {
        val all = cases()
        val person = all.first { it.name == "person_fp32" }
        val tiny = all.first { it.name == "tiny_nms" }
        try {
            DriftCheck(person.check.golden, tiny.check.sidecar) { ByteArray(0) }
            throw AssertionError("accepted golden data of another artifact")
        } catch (e: FormatException) {
            assertTrue(e.message!!.contains("golden data is for"))
        }
    }

    @Test
    fun detectionsMatchIsValidatesRule() {
        // the cases of tests/test_export_report.py::test_detections_match_tolerates_only_ties_at_the_cut
        val ref = listOf(Detection(0f, 0f, 10f, 10f, 0.9f, 1), Detection(20f, 20f, 30f, 30f, 0.5f, 1))
        fun m(got: List<Detection>, max: Int = 100) = DriftCheck.detectionsMatch(ref, got, max, 0.5f, 1e-3f)
        assertTrue(m(ref))
        assertFalse(m(listOf(ref[0], Detection(22f, 20f, 30f, 30f, 0.5f, 1))))
        assertTrue(m(ref.reversed()))
        assertFalse(m(listOf(ref[0], Detection(20f, 20f, 30f, 30f, 0.5f, 2))))
        assertTrue(m(ref.subList(0, 1), max = 2))
        assertFalse(m(ref.subList(0, 1)))
        assertTrue(DriftCheck.detectionsMatch(emptyList(), emptyList(), 100, 0.5f, 1e-3f))
        assertFalse(DriftCheck.detectionsMatch(ref, emptyList(), 100, 0.5f, 1e-3f))
    }

    @Test
    fun theRuleInPieces() {
        val f = floatArrayOf(1f, -2f, 100f)
        val same = DriftCheck.rawDifference(f, f, 0.0, 0.0)
        assertEquals(0.0, same.maxAbsDiff, 0.0)
        assertTrue(same.within)
        // |device - float| <= atol + rtol * |device|, in double
        val d = DriftCheck.rawDifference(floatArrayOf(1.5f, -2f, 101f), f, 0.5, 0.0)
        assertEquals(1.0, d.maxAbsDiff, 0.0)
        assertFalse(d.within)
        assertTrue(DriftCheck.rawDifference(floatArrayOf(1.5f, -2f, 101f), f, 0.5, 0.01).within)
        // a non-finite difference is out of tolerance and left out of the maximum
        val nan = DriftCheck.rawDifference(floatArrayOf(Float.NaN, -2.25f, 100f), f, 1.0, 1.0)
        assertEquals(0.25, nan.maxAbsDiff, 0.0)
        assertFalse(nan.within)
        assertFalse(DriftCheck.rawDifference(floatArrayOf(1f, Float.NEGATIVE_INFINITY, 100f), f, 1.0, 1.0).within)
        val both = same + d
        assertEquals(1.0, both.maxAbsDiff, 0.0)
        assertFalse(both.within)
        assertEquals(2, DriftCheck.nonFinite(listOf(floatArrayOf(Float.NaN, 1f), floatArrayOf(Float.POSITIVE_INFINITY))))
        assertTrue(DriftCheck.passed(0, null, 4, 4))
        assertTrue(DriftCheck.passed(0, true, 4, 3))
        assertFalse(DriftCheck.passed(1, true, 4, 4))
        assertFalse(DriftCheck.passed(0, false, 4, 4))
        assertFalse(DriftCheck.passed(0, true, 3, 4))
        val r = DriftCheck.result(4, null, 0, 4, 4)
        assertEquals(DriftResult(4, null, null, 0, 4, 4, true), r)
        assertEquals("PASS: detections match on 4/4 images (at least 4 needed)", r.summary())
        assertEquals("FAIL: max raw difference 1.00e+00 (OUT of tolerance), detections match on 3/4 images " +
            "(at least 4 needed), 2 NaN/infinite outputs", DriftCheck.result(4, d, 2, 3, 4).summary())
    }
}

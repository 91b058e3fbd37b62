package org.ssdmobile.postprocess

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.ByteArrayInputStream
import java.io.File
import java.nio.file.Files

/** What the app's ModelStore does with its assets, on plain files and lists. */
class ModelFilesTest {
    @Test
    fun programsWithTheirSidecar() {
        val assets = listOf("b.pte", "b.json", "a.pte", "a.json", "lonely.pte", "c.json", "a.golden", "x.txt")
        assertEquals(listOf("a.pte", "b.pte"), ModelFiles.programs(assets))
        assertEquals(emptyList<String>(), ModelFiles.programs(emptyList()))
        assertEquals("m_executorch_fp32.json", ModelFiles.sidecarName("m_executorch_fp32.pte"))
        assertEquals("m_executorch_fp32.golden", ModelFiles.goldenFolder("m_executorch_fp32.pte"))
    }

    @Test
    fun onlyExecuTorchSidecars() {
        assertEquals("m.pte", ModelFiles.sidecar(Samples.sidecar().toJsonText(), "m.json").artifact)
        try {
            ModelFiles.sidecar(Samples.sidecar(target = "onnx").toJsonText(), "m.json")
            fail("accepted an ONNX sidecar")
        } catch (e: FormatException) {
            assertTrue(e.message!!, e.message!!.contains("onnx sidecar"))
        }
    }

    @Test
    fun sha256OfTheLoadedFile() {
        // the FIPS 180-2 test vector
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ModelFiles.sha256(ByteArrayInputStream("abc".toByteArray())))
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ModelFiles.sha256(ByteArrayInputStream(ByteArray(0))))
        val big = ByteArray(3 shl 20) { (it % 251).toByte() }  // more than one read buffer
        val f = File.createTempFile("model", ".pte")
        try {
            f.writeBytes(big)
            assertEquals(ModelFiles.sha256(ByteArrayInputStream(big)), ModelFiles.sha256(f))
        } finally {
            f.delete()
        }
    }

    @Test
    fun copiedOnceUntilTheStampChanges() {
        val dir = Files.createTempDirectory("models").toFile()
        try {
            val out = File(dir, "models/m.pte")
            var opened = 0
            fun open(bytes: ByteArray) = { opened++; ByteArrayInputStream(bytes) }
            ModelFiles.copyOnce(out, "1", open(byteArrayOf(1, 2)))
            ModelFiles.copyOnce(out, "1", open(byteArrayOf(9)))
            assertEquals(1, opened)
            assertArrayEquals(byteArrayOf(1, 2), out.readBytes())
            ModelFiles.copyOnce(out, "2", open(byteArrayOf(3)))  // the app was updated
            assertEquals(2, opened)
            assertArrayEquals(byteArrayOf(3), out.readBytes())
            out.delete()
            ModelFiles.copyOnce(out, "2", open(byteArrayOf(4)))  // gone: copied again
            assertArrayEquals(byteArrayOf(4), out.readBytes())
            assertTrue(!File(dir, "models/m.pte.tmp").exists())
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun driftCheckOnlyWithGoldenData() {
        val s = Samples.sidecar()
        assertNull(ModelFiles.driftCheck("m.pte", s, { null }) { throw AssertionError("nothing to read") })
        assertNull(ModelFiles.driftCheck("m.pte", s, { arrayOf("other.json") }) { throw AssertionError("nothing to read") })
        try {
            ModelFiles.driftCheck("m.pte", s, { arrayOf(DriftCheck.MANIFEST) }) { "{\"format\": \"x\"}".toByteArray() }
            fail("accepted a golden.json of another format")
        } catch (e: FormatException) {
            assertTrue(e.message!!, e.message!!.startsWith("m.golden/golden.json: "))
        }
    }
}

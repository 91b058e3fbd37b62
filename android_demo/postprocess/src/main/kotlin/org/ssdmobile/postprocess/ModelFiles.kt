package org.ssdmobile.postprocess

import java.io.File
import java.io.InputStream
import java.security.MessageDigest

/**
 * The files `ssdmobile bundle --app android` puts in the app's assets, free of Android: every
 * `<stem>.pte` with its `<stem>.json` sidecar, and `<stem>.golden/` (golden.json and its files)
 * when the artifact was exported with `--golden N`. The app passes what the asset manager lists
 * and reads; the names, the checks and the reading are here.
 */
object ModelFiles {
    const val PROGRAM_SUFFIX = ".pte"
    /** The sidecar target of the programs the Android app runs */
    const val TARGET = "executorch"

    fun stem(program: String): String = program.removeSuffix(PROGRAM_SUFFIX)
    fun sidecarName(program: String): String = stem(program) + ".json"
    fun goldenFolder(program: String): String = stem(program) + ".golden"

    /** The programs among `names` (one folder's listing) that have their sidecar beside them, sorted. */
    fun programs(names: Collection<String>): List<String> {
        val all = names.toSet()
        return all.filter { it.endsWith(PROGRAM_SUFFIX) && sidecarName(it) in all }.sorted()
    }

    /** A program's sidecar text -> the sidecar, refused when it is not an ExecuTorch one. */
    fun sidecar(text: String, source: String): Sidecar = Sidecar.parse(text, source).requireTarget(TARGET, source)

    /**
     * The drift check of `program` from its golden folder, or null when it was bundled without
     * one. `list(folder)`: the names in a folder (null when there is none); `read(path)`: a file's bytes.
     */
    fun driftCheck(program: String, sidecar: Sidecar, list: (String) -> Array<String>?,
                   read: (String) -> ByteArray): DriftCheck? {
        val folder = goldenFolder(program)
        if (list(folder)?.contains(DriftCheck.MANIFEST) != true) return null
        val manifest = "$folder/${DriftCheck.MANIFEST}"
        val golden = ArtifactGolden.parse(String(read(manifest), Charsets.UTF_8), manifest)
        return DriftCheck(golden, sidecar) { name -> read("$folder/$name") }
    }

    /** sha256 (lowercase hex) of what `input` holds: what `ssdmobile device-report` matches a result by. */
    fun sha256(input: InputStream): String {
        val digest = MessageDigest.getInstance("SHA-256")
        val buffer = ByteArray(1 shl 20)
        while (true) {
            val n = input.read(buffer)
            if (n < 0) break
            digest.update(buffer, 0, n)
        }
        val sb = StringBuilder()
        for (b in digest.digest()) sb.append(String.format("%02x", b))
        return sb.toString()
    }

    fun sha256(file: File): String = file.inputStream().use { sha256(it) }

    /**
     * `out`, copied from `open()` unless it is there already with the same `stamp` (e.g. the APK's
     * update time): ExecuTorch loads from a file path, so a bundled program is copied out once.
     * Written to a temporary file first, so a half-copied program is never loaded.
     */
    fun copyOnce(out: File, stamp: String, open: () -> InputStream): File {
        val stampFile = File(out.path + ".stamp")
        val current = if (stampFile.isFile) stampFile.readText() else null
        if (!out.isFile || current != stamp) {
            out.absoluteFile.parentFile?.mkdirs()
            val tmp = File(out.path + ".tmp")
            open().use { input -> tmp.outputStream().use { input.copyTo(it) } }
            if (!tmp.renameTo(out)) throw IllegalStateException("cannot write $out")
            stampFile.writeText(stamp)
        }
        return out
    }
}

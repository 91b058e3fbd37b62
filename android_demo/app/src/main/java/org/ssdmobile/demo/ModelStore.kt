package org.ssdmobile.demo

import android.content.Context
import org.ssdmobile.postprocess.DriftCheck
import org.ssdmobile.postprocess.Sidecar
import java.io.File
import java.security.MessageDigest

/**
 * The models `ssdmobile bundle --app android` put in assets/: every `<stem>.pte` with its
 * `<stem>.json` sidecar. ExecuTorch loads from a file path, so a model is copied out of the APK
 * into the app's files once (again when the APK's copy changes size or the app is updated).
 * `ssdmobile export --golden N` data travels beside it as `<stem>.golden/` (bundle copies it).
 */
object ModelStore {
    fun list(context: Context): List<String> {
        val names = context.assets.list("")?.toSet() ?: emptySet()
        return names.filter { it.endsWith(".pte") && "${it.removeSuffix(".pte")}.json" in names }.sorted()
    }

    fun sidecar(context: Context, assetName: String): Sidecar {
        val json = "${assetName.removeSuffix(".pte")}.json"
        val text = context.assets.open(json).bufferedReader().use { it.readText() }
        val sidecar = Sidecar.parse(text, json)
        if (sidecar.target != "executorch")
            throw IllegalStateException("$json is a ${sidecar.target} sidecar; this app runs ExecuTorch (.pte) artifacts")
        return sidecar
    }

    fun file(context: Context, assetName: String): File {
        val out = File(context.filesDir, "models/$assetName")
        val apkStamp = context.packageManager.getPackageInfo(context.packageName, 0).lastUpdateTime
        val stamp = File(out.path + ".stamp")
        if (!out.isFile || stamp.takeIf { it.isFile }?.readText() != apkStamp.toString()) {
            out.parentFile?.mkdirs()
            val tmp = File(out.path + ".tmp")
            context.assets.open(assetName).use { input -> tmp.outputStream().use { input.copyTo(it) } }
            if (!tmp.renameTo(out)) throw IllegalStateException("cannot write $out")
            stamp.writeText(apkStamp.toString())
        }
        return out
    }

    fun open(context: Context, assetName: String, threads: Int = 0): EtDetector =
        EtDetector(sidecar(context, assetName), file(context, assetName).absolutePath, threads)

    /** The artifact's golden data (assets/<stem>.golden/), or null when it was bundled without. */
    fun drift(context: Context, assetName: String, sidecar: Sidecar): DriftCheck? {
        val folder = "${assetName.removeSuffix(".pte")}.golden"
        if (context.assets.list(folder)?.contains(DriftCheck.MANIFEST) != true) return null
        val text = context.assets.open("$folder/${DriftCheck.MANIFEST}").bufferedReader().use { it.readText() }
        val golden = DriftCheck.parse(text, "$folder/${DriftCheck.MANIFEST}")
        return DriftCheck(golden, sidecar) { name -> context.assets.open("$folder/$name").use { it.readBytes() } }
    }

    /** sha256 of the file ExecuTorch loads: what `ssdmobile device-report` matches a result by. */
    fun sha256(file: File): String {
        val digest = MessageDigest.getInstance("SHA-256")
        file.inputStream().use { input ->
            val buffer = ByteArray(1 shl 20)
            while (true) {
                val n = input.read(buffer)
                if (n < 0) break
                digest.update(buffer, 0, n)
            }
        }
        return digest.digest().joinToString("") { "%02x".format(it) }
    }
}

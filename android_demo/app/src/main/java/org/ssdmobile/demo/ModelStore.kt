package org.ssdmobile.demo

import android.content.Context
import org.ssdmobile.postprocess.DriftCheck
import org.ssdmobile.postprocess.ModelFiles
import org.ssdmobile.postprocess.Sidecar
import java.io.File

/**
 * The models `ssdmobile bundle --app android` put in assets/, through Android's asset manager;
 * which files belong together, the sidecar and golden-data checks, the copy-once rule and the
 * sha256 are ModelFiles (postprocess, unit-tested). ExecuTorch loads from a file path, so a model
 * is copied out of the APK into the app's files once (again when the app is updated).
 */
object ModelStore {
    fun list(context: Context): List<String> = ModelFiles.programs(context.assets.list("")?.toList() ?: emptyList())

    fun sidecar(context: Context, assetName: String): Sidecar {
        val json = ModelFiles.sidecarName(assetName)
        val text = context.assets.open(json).bufferedReader().use { it.readText() }
        return ModelFiles.sidecar(text, json)
    }

    fun file(context: Context, assetName: String): File {
        val apkStamp = context.packageManager.getPackageInfo(context.packageName, 0).lastUpdateTime
        return ModelFiles.copyOnce(File(context.filesDir, "models/$assetName"), apkStamp.toString()) {
            context.assets.open(assetName)
        }
    }

    fun open(context: Context, assetName: String, threads: Int = 0): EtDetector =
        EtDetector(sidecar(context, assetName), file(context, assetName).absolutePath, threads)

    /** The artifact's golden data (assets/<stem>.golden/), or null when it was bundled without. */
    fun drift(context: Context, assetName: String, sidecar: Sidecar): DriftCheck? =
        ModelFiles.driftCheck(assetName, sidecar, { folder -> context.assets.list(folder) }) { path ->
            context.assets.open(path).use { it.readBytes() }
        }

    /** sha256 of the file ExecuTorch loads: what `ssdmobile device-report` matches a result by. */
    fun sha256(file: File): String = ModelFiles.sha256(file)
}

package org.ssdmobile.postprocess

import com.google.gson.FieldNamingPolicy
import com.google.gson.Gson
import com.google.gson.GsonBuilder

/**
 * One run of a benchmark screen, as the apps report it: this class owns the format
 * ("ssdmobile-device-result", version 1). The Android app logs [toJson] as one logcat line (tag
 * [LOG_TAG]) and saves it as a file ([fileName]); the iOS app's BenchResult.swift writes the same
 * object. `ssdmobile device-report` reads it (ssdmobile/device.py, which refuses unknown fields:
 * a field added here is added there, and [VERSION] bumped when one changes meaning).
 *
 * JSON names are the properties' in snake_case (Gson's LOWER_CASE_WITH_UNDERSCORES), in
 * declaration order (format and version first: a reader knows what it holds before anything
 * else); nulls are written (a missing drift check is "drift": null, not absent). Construct it
 * with named arguments.
 */
class BenchResult(
    val format: String = FORMAT,
    val version: Int = VERSION,
    val app: String,
    val artifact: String,
    /** sha256 of the artifact file the app loaded: what device-report matches report rows by */
    val artifactSha256: String,
    val model: String,
    val precision: String,
    val nmsInGraph: Boolean,
    val device: DeviceInfo,
    val runtime: RuntimeInfo,
    val warmup: Int,
    val runs: Int,
    val latencyMs: LatencyMs,
    /** the golden data run through the runtime; null when the artifact came without it */
    val drift: DriftResult?,
    /** when the run finished, ISO 8601 UTC (java.time.Instant.toString()) */
    val time: String
) {
    fun toJson(): String = gson.toJson(this)

    /** e.g. result_ssdlite_mobilenet_v2_person_executorch_fp32_20250101T120000Z.json */
    fun fileName(): String =
        "result_" + artifact.substringBefore('.') + "_" + time.substringBefore('.').replace("-", "").replace(":", "")
            .removeSuffix("Z") + "Z.json"

    companion object {
        const val FORMAT = "ssdmobile-device-result"
        const val VERSION = 1
        const val LOG_TAG = "SSDMobileBench"
        /** logcat cuts a line at about 4 KB; a result must stay well under it */
        const val MAX_LINE = 3500

        private val gson: Gson = GsonBuilder()
            .setFieldNamingPolicy(FieldNamingPolicy.LOWER_CASE_WITH_UNDERSCORES)
            .serializeNulls()
            .disableHtmlEscaping()
            .create()
    }
}

class DeviceInfo(
    /** manufacturer and model */
    val name: String,
    /** system on chip (Build.SOC_MODEL on Android 12+), "unknown" when the OS does not say */
    val soc: String,
    val os: String
)

class RuntimeInfo(
    val name: String,
    val version: String,
    /** threads asked of the runtime; 0 = its default */
    val threads: Int,
    val backend: String
)

class Stat(val median: Double, val p90: Double) {
    companion object {
        fun of(s: LatencyStats) = Stat(s.medianMs, s.p90Ms)
    }
}

class LatencyMs(val forward: Stat, val postprocess: Stat, val endToEnd: Stat)

package org.ssdmobile.postprocess

/**
 * One run of a benchmark screen as the apps report it: the generated [DeviceResult]
 * ("ssdmobile-device-result", ssdmobile/device.py, which `ssdmobile device-report` reads). The
 * Android app logs its `toJsonText()` as one logcat line (tag [LOG_TAG]) and saves it as a file
 * ([fileName]); keys in the model's order, nulls written ("drift": null when there was no golden data).
 */
object BenchResult {
    const val LOG_TAG = "SSDMobileBench"
    /** logcat cuts a line at about 4 KB; a result must stay well under it */
    const val MAX_LINE = 3500
    const val APP = "android"

    /**
     * The result of one benchmark run of `sidecar`'s artifact: `artifact` the file name the app
     * loaded and `sha256` its sha256 (what device-report matches report rows by); `drift` null
     * when the artifact came without golden data; `time` ISO 8601 UTC (java.time.Instant.toString()).
     */
    fun of(sidecar: Sidecar, artifact: String, sha256: String, device: DeviceInfo, runtime: RuntimeInfo,
           warmup: Int, runs: Int, forward: LatencyStats, postprocess: LatencyStats, endToEnd: LatencyStats,
           drift: DriftResult?, time: String, app: String = APP): DeviceResult =
        DeviceResult(
            format = DeviceResult.FORMAT,
            version = DeviceResult.VERSION,
            app = app,
            artifact = artifact,
            artifactSha256 = sha256,
            model = sidecar.model,
            precision = sidecar.precision,
            nmsInGraph = sidecar.nms.inGraph,
            device = device,
            runtime = runtime,
            warmup = warmup,
            runs = runs,
            latencyMs = LatencyMs(forward.toStat(), postprocess.toStat(), endToEnd.toStat()),
            drift = drift,
            time = time)

    /** "Android 14 (API 34)" */
    fun androidOs(release: String, sdk: Int): String = "Android $release (API $sdk)"

    /** Build.SOC_MODEL exists from API 31 (Android 12); "unknown" before. */
    fun soc(sdk: Int, socModel: () -> String): String = if (sdk >= 31) socModel() else "unknown"

    /** ExecuTorch with the XNNPACK delegate, as the Android app runs it; threads 0 = its default. */
    fun executorch(version: String, threads: Int): RuntimeInfo = RuntimeInfo("ExecuTorch", version, threads, "XNNPACK")
}

/** Median and p90, as the device result reports them. */
fun LatencyStats.toStat(): LatencyStat = LatencyStat(medianMs, p90Ms)

/** e.g. result_ssdlite_mobilenet_v2_person_executorch_fp32_20250101T120000Z.json */
fun DeviceResult.fileName(): String =
    "result_" + artifact.substringBefore('.') + "_" + time.substringBefore('.').replace("-", "").replace(":", "")
        .removeSuffix("Z") + "Z.json"

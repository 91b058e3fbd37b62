import Foundation

/// One run of the benchmark screen: the device result `ssdmobile device-report` reads
/// (ssdmobile/device.py; the generated DeviceResult, the same format the Android app writes).
extension DeviceResult {
    /// The app field of results this app writes.
    public static let iosApp = "ios"

    /// A result of this app's benchmark: latencies from the timed runs, `finished` in UTC.
    public static func benchmark(app: String = DeviceResult.iosApp, artifact: String, artifactSha256: String,
                                 model: String, precision: String, nmsInGraph: Bool, device: DeviceInfo,
                                 runtime: RuntimeInfo, warmup: Int, forward: LatencyStats, postprocess: LatencyStats,
                                 endToEnd: LatencyStats, drift: DriftResult?, finished: Date = Date()) -> DeviceResult {
        DeviceResult(format: DeviceResult.format, version: DeviceResult.version, app: app, artifact: artifact,
                     artifactSha256: artifactSha256, model: model, precision: precision, nmsInGraph: nmsInGraph,
                     device: device, runtime: runtime, warmup: warmup, runs: forward.runs,
                     latencyMs: LatencyMs(forward: LatencyStat(forward), postprocess: LatencyStat(postprocess),
                                          endToEnd: LatencyStat(endToEnd)),
                     drift: drift, time: timestamp(finished))
    }

    /// ISO 8601 UTC to the second, e.g. 2025-01-02T03:04:05Z.
    public static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: date)
    }

    /// e.g. result_ssdlite_mobilenet_v2_person_coreml_fp16_nms_20250102T030405Z.json (as the Kotlin
    /// BenchResult.fileName(): the artifact's name up to its first dot, the time without separators).
    public var fileName: String {
        let stem = artifact.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? artifact
        let seconds = time.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? time
        var compact = seconds.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        if compact.hasSuffix("Z") { compact.removeLast() }
        return "result_\(stem)_\(compact)Z.json"
    }

    /// The JSON text as one line (what the app logs).
    public func jsonLine() throws -> String { String(decoding: try jsonData(), as: UTF8.self) }

    /// Saved as `directory/fileName` (the directory made if needed) -> its URL.
    @discardableResult
    public func write(into directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(fileName)
        try jsonData().write(to: url, options: .atomic)
        return url
    }
}

/// The benchmark screen's text.
public enum BenchmarkText {
    public static func screen(result r: DeviceResult, forward: LatencyStats, postprocess: LatencyStats,
                              endToEnd: LatencyStats, savedAs fileName: String) -> String {
        """
        \(r.artifact)
        \(r.device.name), \(r.device.os), \(r.runtime.backend)

        drift vs float: \(r.drift?.summary ?? "no golden data (export with --golden N, bundle again)")

        \(r.warmup) warm-up, \(r.runs) timed runs
        \(forward.summary("Core ML prediction"))
        \(postprocess.summary("post-processing"))
        \(endToEnd.summary("Vision 640x480"))

        saved \(fileName): share it, then `ssdmobile device-report FILE`.
        """
    }
}

/// A fixed, deterministic test frame (gradients and blocks), so benchmark runs are comparable.
public enum SyntheticFrame {
    /// width x height pixels, 4 bytes each (R, G, B, 255), row by row.
    public static func rgbx(width: Int, height: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 4
                bytes[i] = UInt8(x * 255 / width)
                bytes[i + 1] = UInt8(y * 255 / height)
                bytes[i + 2] = (x / 40 + y / 40) % 2 == 0 ? 200 : 40
            }
        }
        return bytes
    }
}

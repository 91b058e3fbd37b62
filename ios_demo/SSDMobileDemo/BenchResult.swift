import Foundation

/// One run of the benchmark screen: the device result `ssdmobile device-report` reads
/// (ssdmobile/device.py). The format is owned by android_demo/postprocess BenchResult.kt; this is
/// its mirror (same keys, same meaning, nulls written), kept in step by hand since Swift is not
/// compiled in CI. The app saves it as a file and offers it to share (AirDrop, Files, mail).
struct BenchResult: Encodable {
    struct Device: Encodable {
        let name: String
        let soc: String
        let os: String
    }

    struct Runtime: Encodable {
        let name: String
        let version: String
        let threads: Int
        let backend: String
    }

    struct Stat: Encodable {
        let median: Double
        let p90: Double
        init(_ s: LatencyStats) { median = s.medianMs; p90 = s.p90Ms }
    }

    struct Latency: Encodable {
        let forward: Stat
        let postprocess: Stat
        let endToEnd: Stat

        enum CodingKeys: String, CodingKey {
            case forward, postprocess
            case endToEnd = "end_to_end"
        }
    }

    static let format = "ssdmobile-device-result"
    static let version = 1

    let app = "ios"
    let artifact: String
    let artifactSha256: String
    let model: String
    let precision: String
    let nmsInGraph: Bool
    let device: Device
    let runtime: Runtime
    let warmup: Int
    let runs: Int
    let latencyMs: Latency
    let drift: DriftResult?
    let time: String

    enum CodingKeys: String, CodingKey {
        case format, version, app, artifact, model, precision, device, runtime, warmup, runs, drift, time
        case artifactSha256 = "artifact_sha256", nmsInGraph = "nms_in_graph", latencyMs = "latency_ms"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(Self.version, forKey: .version)
        try c.encode(app, forKey: .app)
        try c.encode(artifact, forKey: .artifact)
        try c.encode(artifactSha256, forKey: .artifactSha256)
        try c.encode(model, forKey: .model)
        try c.encode(precision, forKey: .precision)
        try c.encode(nmsInGraph, forKey: .nmsInGraph)
        try c.encode(device, forKey: .device)
        try c.encode(runtime, forKey: .runtime)
        try c.encode(warmup, forKey: .warmup)
        try c.encode(runs, forKey: .runs)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(drift, forKey: .drift)  // null when there was no golden data, as on Android
        try c.encode(time, forKey: .time)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// e.g. result_ssdlite_mobilenet_v2_person_coreml_fp16_nms_20250101T120000Z.json (as Kotlin's fileName())
    var fileName: String {
        let stamp = time.split(separator: ".").first.map(String.init) ?? time
        let compact = stamp.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        let stem = artifact.split(separator: ".").first.map(String.init) ?? artifact
        return "result_\(stem)_\(compact.hasSuffix("Z") ? String(compact.dropLast()) : compact)Z.json"
    }

    /// Saved under the app's Documents/results/ -> its URL (the screen's Share button sends it).
    func save() throws -> URL {
        let dir = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent("results")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(fileName)
        try json().write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}

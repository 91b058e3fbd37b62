import CoreGraphics
import CoreML
import Foundation

/// The on-device drift check, a mirror of android_demo/postprocess DriftCheck.kt (which is
/// compiled and unit-tested in CI against real ExecuTorch programs; this file is not compiled
/// here, there is no Swift toolchain in CI: keep it in step with the Kotlin one by hand).
///
/// The golden data `ssdmobile export --golden N` attaches to an artifact (ssdmobile/drift.py;
/// `ssdmobile bundle --app ios` copies it into Models/ as `<stem>.golden.bundle`, a folder Xcode
/// copies whole) is run through Core ML here and compared with the float model's outputs:
///  - raw outputs (no NMS in the graph) pass when every value is finite and
///    |device - float| <= atol + rtol * |device|, in double (ExecuTorch BundledProgram's rule).
///    The iOS app runs NMS pipelines only, so for it the check is on detections;
///  - detections match the float model's image by image as ssdmobile.validate.detections_match
///    decides, with the golden score and box tolerances; at least minImagesMatched must match;
///  - any NaN or infinite output fails the check.
struct DriftCheck {
    static let format = "ssdmobile-artifact-golden"
    static let version = 1
    static let manifestName = "golden.json"

    let golden: GoldenManifest
    let folder: URL

    struct Detection {
        let x1: Float, y1: Float, x2: Float, y2: Float
        let score: Float
        let label: Int
    }

    enum CheckError: LocalizedError {
        case notGolden(String), tooNew(String, Int), otherArtifact(String, String), unreadable(String, String)
        var errorDescription: String? {
            switch self {
            case .notGolden(let f): return "\(f): not ssdmobile golden data"
            case .tooNew(let f, let v): return "\(f): golden data version \(v) is newer than this app understands; update the app"
            case .otherArtifact(let g, let a): return "golden data is for \(g), not \(a)"
            case .unreadable(let f, let why): return "\(f): \(why)"
            }
        }
    }

    init(folder: URL, sidecar: Sidecar) throws {
        let url = folder.appendingPathComponent(Self.manifestName)
        let manifest: GoldenManifest
        do {
            manifest = try JSONDecoder().decode(GoldenManifest.self, from: Data(contentsOf: url))
        } catch {
            throw CheckError.unreadable(url.lastPathComponent, error.localizedDescription)
        }
        guard manifest.format == Self.format else { throw CheckError.notGolden(url.lastPathComponent) }
        guard manifest.version <= Self.version else { throw CheckError.tooNew(url.lastPathComponent, manifest.version) }
        guard manifest.artifact == sidecar.artifact else { throw CheckError.otherArtifact(manifest.artifact, sidecar.artifact) }
        self.golden = manifest
        self.folder = folder
    }

    var images: Int { golden.images.count }

    /// Image i as Core ML takes it: the uint8 RGB image already at the model's size (no resize left to do).
    func inputImage(_ i: Int) throws -> CGImage {
        let c = golden.images[i]
        guard golden.input.dtype == "uint8" else {
            throw CheckError.unreadable(c.input, "a float32 input: golden data of a tensor-input artifact, not Core ML's")
        }
        let h = golden.input.shape[golden.input.layout == "NHWC" ? 1 : 2]
        let w = golden.input.shape[golden.input.layout == "NHWC" ? 2 : 3]
        var rgba = [UInt8](repeating: 255, count: w * h * 4)
        let rgb = try Data(contentsOf: folder.appendingPathComponent(c.input))
        guard rgb.count == w * h * 3 else { throw CheckError.unreadable(c.input, "\(rgb.count) bytes, expected \(w * h * 3)") }
        rgb.withUnsafeBytes { src in
            for p in 0..<(w * h) {
                rgba[p * 4] = src[p * 3]
                rgba[p * 4 + 1] = src[p * 3 + 1]
                rgba[p * 4 + 2] = src[p * 3 + 2]
            }
        }
        return rgba.withUnsafeMutableBytes { raw in
            let ctx = CGContext(data: raw.baseAddress, width: w, height: h, bitsPerComponent: 8, bytesPerRow: w * 4,
                                space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)!
            return ctx.makeImage()!
        }
    }

    /// The NMS pipeline's outputs -> detections, normalized xyxy: confidence [K, C-1] (foreground
    /// classes, label = column + 1) and coordinates [K, 4] (cx, cy, w, h normalized).
    static func detections(confidence: MLMultiArray, coordinates: MLMultiArray) -> (dets: [Detection], nonFinite: Int) {
        let k = confidence.shape.count > 1 ? confidence.shape[0].intValue : 0
        let classes = confidence.shape.count > 1 ? confidence.shape[1].intValue : 0
        var out: [Detection] = []
        var nonFinite = 0
        for i in 0..<k {
            var best = -1
            var score: Float = -1
            for c in 0..<classes {
                let v = confidence[[NSNumber(value: i), NSNumber(value: c)]].floatValue
                if !v.isFinite { nonFinite += 1; continue }
                if v > score { score = v; best = c }
            }
            let box = (0..<4).map { coordinates[[NSNumber(value: i), NSNumber(value: $0)]].floatValue }
            nonFinite += box.filter { !$0.isFinite }.count
            guard best >= 0 else { continue }
            out.append(Detection(x1: box[0] - box[2] / 2, y1: box[1] - box[3] / 2, x2: box[0] + box[2] / 2,
                                 y2: box[1] + box[3] / 2, score: score, label: best + 1))
        }
        return (out.sorted { $0.score > $1.score }, nonFinite)
    }

    /// One entry per golden image: the runtime's raw outputs (nil with NMS in the graph), its
    /// detections (normalized), and how many of its output values were NaN or infinite.
    struct ImageOutputs {
        let raw: [[Float]]?
        let detections: [Detection]
        let nonFinite: Int
    }

    func check(_ outputs: [ImageOutputs]) throws -> DriftResult {
        precondition(outputs.count == images, "\(outputs.count) output sets for \(images) golden images")
        let tol = golden.tolerances
        let raw = !golden.nmsInGraph
        var maxDiff = 0.0
        var within = true
        var nonFinite = 0
        var matched = 0
        for (i, c) in golden.images.enumerated() {
            let o = outputs[i]
            nonFinite += o.nonFinite
            if raw, let files = c.floatOutputs, let got = o.raw {
                for (k, name) in files.enumerated() {
                    let want = try Self.readF32(folder.appendingPathComponent(name))
                    for j in 0..<min(want.count, got[k].count) {
                        let diff = abs(Double(got[k][j]) - Double(want[j]))
                        if !diff.isFinite { within = false; continue }
                        maxDiff = max(maxDiff, diff)
                        if diff > tol.atol + abs(tol.rtol * Double(got[k][j])) { within = false }
                    }
                }
            }
            if o.nonFinite > 0 { continue }
            let w = Float(c.width), h = Float(c.height)
            let ref = c.detections.boxes.indices.map { j -> Detection in
                let b = c.detections.boxes[j]
                return Detection(x1: b[0] * w, y1: b[1] * h, x2: b[2] * w, y2: b[3] * h,
                                 score: c.detections.scores[j], label: c.detections.labels[j])
            }
            let got = o.detections.map { Detection(x1: $0.x1 * w, y1: $0.y1 * h, x2: $0.x2 * w, y2: $0.y2 * h,
                                                   score: $0.score, label: $0.label) }
            if Self.detectionsMatch(ref, got, maxDetections: golden.maxDetections, boxTolPx: Float(tol.boxTolPx),
                                    scoreTol: Float(tol.scoreTol)) { matched += 1 }
        }
        let rawOk: Bool? = raw ? within : nil
        let passed = nonFinite == 0 && rawOk != false && matched >= tol.minImagesMatched
        return DriftResult(images: images, maxAbsDiffRaw: raw ? maxDiff : nil, rawWithinTolerance: rawOk,
                           nonFinite: nonFinite, detectionsMatched: matched, minImagesMatched: tol.minImagesMatched,
                           passed: passed)
    }

    /// ssdmobile.validate.detections_match (and DriftCheck.kt), line for line.
    static func detectionsMatch(_ ref: [Detection], _ got: [Detection], maxDetections: Int, boxTolPx: Float,
                                scoreTol: Float) -> Bool {
        if ref.isEmpty || got.isEmpty { return ref.count == got.count }
        var used = [Bool](repeating: false, count: got.count)
        var unmatchedRef: [Int] = []
        for (i, r) in ref.enumerated() {
            var found = -1
            for (j, g) in got.enumerated() where !used[j] && r.label == g.label && abs(r.score - g.score) <= scoreTol
                && max(abs(r.x1 - g.x1), abs(r.y1 - g.y1), abs(r.x2 - g.x2), abs(r.y2 - g.y2)) <= boxTolPx {
                found = j
                break
            }
            if found >= 0 { used[found] = true } else { unmatchedRef.append(i) }
        }
        let cut = min(Double(ref.map { $0.score }.min()!), Double(got.map { $0.score }.min()!)) + Double(scoreTol)
        let full = ref.count >= maxDetections || got.count >= maxDetections
        func nearCut(_ s: Float) -> Bool { full && Double(s) <= cut }
        return unmatchedRef.allSatisfy { nearCut(ref[$0].score) }
            && got.indices.filter { !used[$0] }.allSatisfy { nearCut(got[$0].score) }
    }

    static func readF32(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}

/// What a drift check found; the device result's "drift" (BenchResult.swift).
struct DriftResult: Encodable {
    let images: Int
    let maxAbsDiffRaw: Double?
    let rawWithinTolerance: Bool?
    let nonFinite: Int
    let detectionsMatched: Int
    let minImagesMatched: Int
    let passed: Bool

    enum CodingKeys: String, CodingKey {
        case images, passed
        case maxAbsDiffRaw = "max_abs_diff_raw", rawWithinTolerance = "raw_within_tolerance", nonFinite = "non_finite"
        case detectionsMatched = "detections_matched", minImagesMatched = "min_images_matched"
    }

    /// nulls written, not left out (device-report requires every key), in the Kotlin writer's order
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(images, forKey: .images)
        try c.encode(maxAbsDiffRaw, forKey: .maxAbsDiffRaw)
        try c.encode(rawWithinTolerance, forKey: .rawWithinTolerance)
        try c.encode(nonFinite, forKey: .nonFinite)
        try c.encode(detectionsMatched, forKey: .detectionsMatched)
        try c.encode(minImagesMatched, forKey: .minImagesMatched)
        try c.encode(passed, forKey: .passed)
    }

    var summary: String {
        var s = passed ? "PASS" : "FAIL"
        if let d = maxAbsDiffRaw {
            s += String(format: ": max raw difference %.2e", d) + (rawWithinTolerance == true ? " (within tolerance)" : " (OUT of tolerance)") + ", "
        } else {
            s += ": "
        }
        s += "detections match on \(detectionsMatched)/\(images) images (at least \(minImagesMatched) needed)"
        if nonFinite > 0 { s += ", \(nonFinite) NaN/infinite outputs" }
        return s
    }
}

/// golden.json as ssdmobile/drift.py writes it (the Kotlin ArtifactGolden's fields).
struct GoldenManifest: Decodable {
    struct Input: Decodable {
        let name: String
        let shape: [Int]
        let layout: String
        let dtype: String
    }

    struct Detections: Decodable {
        let count: Int
        let boxes: [[Float]]
        let scores: [Float]
        let labels: [Int]
    }

    struct Image: Decodable {
        let image: String
        let width: Int
        let height: Int
        let input: String
        let floatOutputs: [String]?
        let detections: Detections

        enum CodingKeys: String, CodingKey {
            case image, width, height, input, detections
            case floatOutputs = "float_outputs"
        }
    }

    struct Tolerances: Decodable {
        let rtol: Double
        let atol: Double
        let scoreTol: Double
        let boxTolPx: Double
        let minImagesMatched: Int

        enum CodingKeys: String, CodingKey {
            case rtol, atol
            case scoreTol = "score_tol", boxTolPx = "box_tol_px", minImagesMatched = "min_images_matched"
        }
    }

    let format: String
    let version: Int
    let artifact: String
    let artifactSha256: String
    let precision: String
    let nmsInGraph: Bool
    let input: Input
    let maxDetections: Int
    let images: [Image]
    let tolerances: Tolerances

    enum CodingKeys: String, CodingKey {
        case format, version, artifact, precision, input, images, tolerances
        case artifactSha256 = "artifact_sha256", nmsInGraph = "nms_in_graph", maxDetections = "max_detections"
    }
}

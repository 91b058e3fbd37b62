import Foundation

/// ssdmobile.validate.detections_match, line for line (and the Kotlin DriftCheck.detectionsMatch):
/// every reference detection (boxes in pixels) has its own counterpart (same label, score within
/// scoreTol, every corner within boxTolPx), taken greedily in reference order, and nothing is left
/// over; when either list is full (maxDetections), detections scoring within scoreTol of the
/// lowest score may fall either side of the cut.
public enum DetectionMatch {
    public static func matches(_ ref: [Detection], _ got: [Detection], maxDetections: Int, boxTolPx: Float,
                               scoreTol: Float) -> Bool {
        if ref.isEmpty || got.isEmpty { return ref.count == got.count }
        var used = [Bool](repeating: false, count: got.count)
        var unmatchedRef: [Int] = []
        for (i, r) in ref.enumerated() {
            var found = -1
            for (j, g) in got.enumerated() where !used[j] && r.label == g.label && abs(r.score - g.score) <= scoreTol
                && maxCornerDiff(r, g) <= boxTolPx {
                found = j
                break
            }
            if found >= 0 { used[found] = true } else { unmatchedRef.append(i) }
        }
        let lowest = Swift.min(ref.map { $0.score }.min() ?? 0, got.map { $0.score }.min() ?? 0)
        let cut = Double(lowest) + Double(scoreTol)
        let full = ref.count >= maxDetections || got.count >= maxDetections
        func nearCut(_ s: Float) -> Bool { full && Double(s) <= cut }
        return unmatchedRef.allSatisfy { nearCut(ref[$0].score) }
            && got.indices.filter { !used[$0] }.allSatisfy { nearCut(got[$0].score) }
    }

    static func maxCornerDiff(_ p: Detection, _ q: Detection) -> Float {
        Swift.max(Swift.max(abs(p.x1 - q.x1), abs(p.y1 - q.y1)), Swift.max(abs(p.x2 - q.x2), abs(p.y2 - q.y2)))
    }
}

/// The drift rule as pure functions (ssdmobile.drift.raw_difference and verdict), shared by
/// DriftCheck and the cross-language test vectors.
public enum DriftRule {
    /// One output's values, the float model's and the device's (float32, as the app holds them) ->
    /// the largest |device - float| and whether every value passes |device - float| <= atol + rtol * |device|,
    /// in double. A non-finite difference fails and is left out of the largest (0 when none is finite).
    public static func rawDifference(float want: [Float], device got: [Float], rtol: Double,
                                     atol: Double) throws -> (maxAbsDiff: Double, withinTolerance: Bool) {
        guard want.count == got.count else {
            throw KitError("a device output has \(got.count) values, the float one \(want.count)")
        }
        var maxDiff = 0.0
        var within = true
        want.withUnsafeBufferPointer { w in
            got.withUnsafeBufferPointer { g in
                for j in 0..<g.count {
                    let device = Double(g[j])
                    let diff = abs(device - Double(w[j]))
                    if !diff.isFinite { within = false; continue }
                    if diff > maxDiff { maxDiff = diff }
                    if !(diff <= atol + abs(rtol * device)) { within = false }
                }
            }
        }
        return (maxDiff, within)
    }

    /// NaN or infinite values over all of one image's outputs.
    public static func nonFinite(_ outputs: [[Float]]) -> Int {
        outputs.reduce(0) { n, o in n + o.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
    }

    /// No NaN or infinite output, raw outputs within tolerance (nil: NMS in the graph, nothing raw
    /// to compare) and at least minImagesMatched images whose detections match.
    public static func verdict(nonFinite: Int, rawWithinTolerance: Bool?, matched: Int, minImagesMatched: Int) -> Bool {
        nonFinite == 0 && rawWithinTolerance != false && matched >= minImagesMatched
    }
}

/// The drift check image by image: add each image's outputs, then read the result.
public struct DriftTally: Sendable {
    public let raw: Bool
    public let rtol: Double
    public let atol: Double
    public let minImagesMatched: Int
    public private(set) var images = 0
    public private(set) var maxAbsDiffRaw = 0.0
    public private(set) var rawWithinTolerance = true
    public private(set) var nonFinite = 0
    public private(set) var detectionsMatched = 0

    /// raw: the artifact's outputs are raw (no NMS in the graph) and are compared with the float model's.
    public init(raw: Bool, rtol: Double, atol: Double, minImagesMatched: Int) {
        self.raw = raw
        self.rtol = rtol
        self.atol = atol
        self.minImagesMatched = minImagesMatched
    }

    /// One image: the device's outputs, the float model's raw outputs (raw checks only), and whether
    /// the detections match; that is only asked when every device value is finite.
    public mutating func add(device: [[Float]], float: [[Float]]?, detectionsMatch: () throws -> Bool) throws {
        images += 1
        let bad = DriftRule.nonFinite(device)
        nonFinite += bad
        if raw {
            guard let float else { throw KitError("image \(images): no float outputs to compare the raw outputs with") }
            guard float.count == device.count else {
                throw KitError("image \(images): \(device.count) device outputs for \(float.count) float outputs")
            }
            for (want, got) in zip(float, device) {
                let (diff, ok) = try DriftRule.rawDifference(float: want, device: got, rtol: rtol, atol: atol)
                maxAbsDiffRaw = Swift.max(maxAbsDiffRaw, diff)
                rawWithinTolerance = rawWithinTolerance && ok
            }
        }
        if bad == 0, try detectionsMatch() { detectionsMatched += 1 }
    }

    public var result: DriftResult {
        let rawOk: Bool? = raw ? rawWithinTolerance : nil
        return DriftResult(images: images, maxAbsDiffRaw: raw ? maxAbsDiffRaw : nil, rawWithinTolerance: rawOk,
                           nonFinite: nonFinite, detectionsMatched: detectionsMatched, minImagesMatched: minImagesMatched,
                           passed: DriftRule.verdict(nonFinite: nonFinite, rawWithinTolerance: rawOk,
                                                     matched: detectionsMatched, minImagesMatched: minImagesMatched))
    }
}

/// An RGB image, 3 bytes a pixel, row by row: a golden input of an image-input (Core ML) artifact.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let rgb: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8]) throws {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw KitError("\(rgb.count) bytes for a \(width)x\(height) RGB image (expected \(width * height * 3))")
        }
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    /// 4 bytes a pixel (R, G, B, 255): what a CGContext with noneSkipLast takes.
    public var rgbx: [UInt8] {
        var out = [UInt8](repeating: 255, count: width * height * 4)
        for p in 0..<(width * height) {
            out[p * 4] = rgb[p * 3]
            out[p * 4 + 1] = rgb[p * 3 + 1]
            out[p * 4 + 2] = rgb[p * 3 + 2]
        }
        return out
    }
}

/// The on-device drift check: the golden data `ssdmobile export --golden N` attaches to an artifact
/// (ssdmobile/drift.py: `<stem>.golden/golden.json` and its files; `ssdmobile bundle --app ios`
/// copies it as `<stem>.golden.bundle`) is run through the phone's runtime, and the outputs are
/// compared with the float model's. One rule, shared with the Python side (ssdmobile.drift.compare)
/// and the Android app (DriftCheck.kt):
///  - raw outputs (no NMS in the graph) pass when every value is finite and
///    |device - float| <= atol + rtol * |device|, in double;
///  - detections (decoded by Postprocessor, exactly as the app does) match the float model's image
///    by image as ssdmobile.validate.detections_match decides, with the golden score and box
///    tolerances; at least minImagesMatched images must match;
///  - any NaN or infinite output fails the check.
public struct DriftCheck {
    public static let manifestName = "golden.json"

    public let golden: ArtifactGolden
    public let sidecar: Sidecar
    private let read: (String) throws -> Data

    /// read: a file of the golden folder by name (beside golden.json) -> its bytes.
    public init(golden: ArtifactGolden, sidecar: Sidecar, read: @escaping (String) throws -> Data) throws {
        guard golden.artifact == sidecar.artifact else {
            throw KitError("golden data is for \(golden.artifact), not \(sidecar.artifact)")
        }
        guard golden.nmsInGraph == sidecar.nms.inGraph else {
            throw KitError("golden data and sidecar of \(sidecar.artifact) disagree on NMS in the graph")
        }
        self.golden = golden
        self.sidecar = sidecar
        self.read = read
    }

    /// A golden folder on disk: golden.json (strictly parsed) and its files.
    public init(folder: URL, sidecar: Sidecar) throws {
        let manifest = folder.appendingPathComponent(Self.manifestName)
        let golden = try ArtifactGolden.parse(try Data(contentsOf: manifest),
                                              source: "\(folder.lastPathComponent)/\(Self.manifestName)")
        try self.init(golden: golden, sidecar: sidecar) { name in try Data(contentsOf: folder.appendingPathComponent(name)) }
    }

    public var images: Int { golden.images.count }

    /// Image i's input as a tensor-input artifact takes it (float32, golden.input.shape).
    public func input(_ i: Int) throws -> [Float] {
        let c = golden.images[i]
        guard golden.input.dtype == "float32" else {
            throw KitError("\(c.input): \(golden.input.dtype) golden inputs are for image-input (Core ML) artifacts")
        }
        return try Float32LE.decode(try read(c.input), source: c.input)
    }

    /// Image i as an image-input (Core ML) artifact takes it: the RGB image already at the model's
    /// size (no resize left to do).
    public func inputImage(_ i: Int) throws -> RGBImage {
        let c = golden.images[i]
        guard golden.input.dtype == "uint8", golden.input.shape.count == 4 else {
            throw KitError("\(c.input): a \(golden.input.dtype) input: golden data of a tensor-input artifact, not Core ML's")
        }
        // [1, 3, H, W] for image_RGB and NCHW (ssdmobile.drift.read_inputs), [1, H, W, 3] for NHWC
        let nhwc = golden.input.layout == "NHWC"
        let h = golden.input.shape[nhwc ? 1 : 2]
        let w = golden.input.shape[nhwc ? 2 : 3]
        let bytes = [UInt8](try read(c.input))
        do {
            return try RGBImage(width: w, height: h, rgb: bytes)
        } catch let e as KitError {
            throw KitError("\(c.input): \(e.message)")
        }
    }

    /// `outputs[i]`: the runtime's outputs for image i, flat, in the sidecar's output order.
    public func check(outputs: [[[Float]]]) throws -> DriftResult {
        guard outputs.count == images else { throw KitError("\(outputs.count) output sets for \(images) golden images") }
        let tol = golden.tolerances
        let post = try Postprocessor(sidecar: sidecar)
        var tally = DriftTally(raw: !golden.nmsInGraph, rtol: tol.rtol, atol: tol.atol, minImagesMatched: tol.minImagesMatched)
        for (i, c) in golden.images.enumerated() {
            let outs = outputs[i]
            var float: [[Float]]?
            if tally.raw {
                guard let files = c.floatOutputs else { throw KitError("\(c.image): golden data has no float outputs") }
                float = try files.map { try Float32LE.decode(try read($0), source: $0) }
            }
            do {
                try tally.add(device: outs, float: float) {
                    let w = Float(c.width), h = Float(c.height)
                    let d = c.detections
                    guard d.boxes.count == d.scores.count, d.labels.count == d.scores.count else {
                        throw KitError("golden detections: \(d.boxes.count) boxes, \(d.scores.count) scores, \(d.labels.count) labels")
                    }
                    let ref = d.boxes.indices.map { j -> Detection in
                        let b = d.boxes[j]
                        return Detection(x1: Float(b[0]) * w, y1: Float(b[1]) * h, x2: Float(b[2]) * w, y2: Float(b[3]) * h,
                                         score: Float(d.scores[j]), label: d.labels[j])
                    }
                    let got = try post.run(outs).map { $0.scaled(x: w, y: h) }
                    return DetectionMatch.matches(ref, got, maxDetections: golden.maxDetections,
                                                  boxTolPx: Float(tol.boxTolPx), scoreTol: Float(tol.scoreTol))
                }
            } catch let e as KitError {
                throw KitError("\(c.image): \(e.message)")
            }
        }
        return tally.result
    }
}

extension DriftResult {
    /// One line for the screen and the log, as the Kotlin DriftResult.summary().
    public var summary: String {
        var s = passed ? "PASS" : "FAIL"
        if let d = maxAbsDiffRaw {
            s += ": max raw difference " + String(format: "%.2e", d)
                + (rawWithinTolerance == true ? " (within tolerance)" : " (OUT of tolerance)") + ", "
        } else {
            s += ": "
        }
        s += "detections match on \(detectionsMatched)/\(images) images (at least \(minImagesMatched) needed)"
        if nonFinite > 0 { s += ", \(nonFinite) NaN/infinite outputs" }
        return s
    }
}

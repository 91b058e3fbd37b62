import CoreML
import OSLog
import SwiftUI
import UIKit

/// On-device drift, then latency:
///   drift     the artifact's golden data (`ssdmobile export --golden N`, bundled beside it) run
///             through Core ML here against the float model's detections (DriftCheck)
///   forward   MLModel.prediction on a fixed input image (the pipeline: model + NMS)
///   post-processing   the pipeline's outputs -> detections (what the app reads of them)
///   end-to-end        the full VNCoreMLRequest on a fixed 640x480 frame (resize + model + NMS)
/// median and p90 as ssdmobile/bench.py computes them. One device result per run (BenchResult,
/// the format `ssdmobile device-report` reads) is saved to Documents/results/ and offered to
/// share, and logged (subsystem org.ssdmobile.demo, category benchmark).
struct BenchmarkScreen: View {
    let model: LoadedModel
    @State private var warmup = 5
    @State private var runs = 50
    @State private var result = ""
    @State private var saved: URL?
    @State private var running = false
    private let log = Logger(subsystem: "org.ssdmobile.demo", category: "benchmark")

    var body: some View {
        Form {
            Stepper("warm-up runs: \(warmup)", value: $warmup, in: 0...100)
            Stepper("timed runs: \(runs)", value: $runs, in: 1...1000, step: 10)
            Button(running ? "running ..." : "Run") { start() }.disabled(running)
            if let saved {
                ShareLink(item: saved) { Label("Share the result (\(saved.lastPathComponent))", systemImage: "square.and.arrow.up") }
            }
            Text(result).font(.caption.monospaced()).textSelection(.enabled)
        }
    }

    private func start() {
        running = true
        result = "running: \(warmup) warm-up, \(runs) timed runs ..."
        let (w, n) = (warmup, runs)
        DispatchQueue.global(qos: .userInitiated).async {
            var text: String
            var url: URL?
            do {
                let run = try benchmark(warmup: w, runs: n)
                text = run.0
                url = run.1
            } catch {
                text = "failed: \(error.localizedDescription)"
            }
            DispatchQueue.main.async {
                result = text
                saved = url
                running = false
            }
        }
    }

    /// The golden data through the pipeline (thresholds as the app sets them), against float.
    private func drift(inputName: String, constraint: MLImageConstraint) throws -> DriftResult? {
        guard let folder = model.info.goldenURL else { return nil }
        let check = try DriftCheck(folder: folder, sidecar: model.sidecar)
        var outputs: [DriftCheck.ImageOutputs] = []
        for i in 0..<check.images {
            var features = model.thresholds
            features[inputName] = try MLFeatureValue(cgImage: try check.inputImage(i), constraint: constraint, options: nil)
            let out = try model.model.prediction(from: MLDictionaryFeatureProvider(dictionary: features))
            guard let conf = out.featureValue(for: "confidence")?.multiArrayValue,
                  let coords = out.featureValue(for: "coordinates")?.multiArrayValue else {
                throw Sidecar.LoadError.unreadable(model.sidecar.artifact, "the pipeline has no confidence/coordinates outputs")
            }
            let (dets, nonFinite) = DriftCheck.detections(confidence: conf, coordinates: coords)
            outputs.append(DriftCheck.ImageOutputs(raw: nil, detections: dets, nonFinite: nonFinite))
        }
        return try check.check(outputs)
    }

    private func benchmark(warmup: Int, runs: Int) throws -> (String, URL) {
        let frame = Self.syntheticFrame(width: 640, height: 480)
        let s = model.sidecar
        let imageInput = model.model.modelDescription.inputDescriptionsByName.first { $0.value.type == .image }
        guard let imageInput, let constraint = imageInput.value.imageConstraint else {
            throw Sidecar.LoadError.unreadable(s.artifact, "the model has no image input")
        }
        let inputName = imageInput.key
        let pixels = try MLFeatureValue(cgImage: frame, constraint: constraint, options: nil)
        var features = model.thresholds
        features[inputName] = pixels
        let provider = try MLDictionaryFeatureProvider(dictionary: features)
        // first: a runtime that computes something else makes the timings moot
        let driftResult = try drift(inputName: inputName, constraint: constraint)

        for _ in 0..<warmup {
            _ = try model.model.prediction(from: provider)
            _ = try model.detect(frame, orientation: .up)
        }
        var coreml: [Double] = []
        var post: [Double] = []
        var vision: [Double] = []
        var last: MLFeatureProvider?
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            last = try model.model.prediction(from: provider)
            coreml.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            if let conf = last?.featureValue(for: "confidence")?.multiArrayValue,
               let coords = last?.featureValue(for: "coordinates")?.multiArrayValue {
                _ = DriftCheck.detections(confidence: conf, coordinates: coords)
            }
            post.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            _ = try model.detect(frame, orientation: .up)
            vision.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        let c = LatencyStats(coreml), p = LatencyStats(post), v = LatencyStats(vision)
        var sys = utsname()
        uname(&sys)
        let machine = withUnsafeBytes(of: &sys.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let os = "iOS \(UIDevice.current.systemVersion)"
        guard let sha = s.artifactSha256 else {
            throw Sidecar.LoadError.unreadable(s.artifact, "the sidecar has no artifact_sha256; export the model again")
        }
        let result = BenchResult(
            artifact: s.artifact, artifactSha256: sha, model: s.model, precision: s.precision, nmsInGraph: s.nms.inGraph,
            device: .init(name: machine, soc: "unknown", os: os),
            runtime: .init(name: "Core ML", version: os, threads: 0, backend: "compute units: all"),
            warmup: warmup, runs: runs, latencyMs: .init(forward: .init(c), postprocess: .init(p), endToEnd: .init(v)),
            drift: driftResult, time: ISO8601DateFormatter().string(from: Date()))
        let json = try result.json()
        let url = try result.save()
        log.info("\(c.summary("\(s.artifact) Core ML prediction"), privacy: .public)")
        log.info("\(v.summary("\(s.artifact) Vision request"), privacy: .public)")
        log.info("\(json, privacy: .public)")
        print(json)
        let text = """
        \(s.artifact)
        \(machine), \(os), compute units: all (CPU, GPU, Neural Engine)

        drift vs float: \(driftResult?.summary ?? "no golden data (export with --golden N, bundle again)")

        \(warmup) warm-up, \(runs) timed runs
        \(c.summary("Core ML prediction"))
        \(p.summary("post-processing"))
        \(v.summary("Vision 640x480"))

        saved \(url.lastPathComponent): share it, then `ssdmobile device-report FILE`.
        """
        return (text, url)
    }

    /// A fixed, deterministic test frame (gradients and blocks), so runs are comparable.
    static func syntheticFrame(width: Int, height: Int) -> CGImage {
        var bytes = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 4
                bytes[i] = UInt8(x * 255 / width)
                bytes[i + 1] = UInt8(y * 255 / height)
                bytes[i + 2] = (x / 40 + y / 40) % 2 == 0 ? 200 : 40
            }
        }
        return bytes.withUnsafeMutableBytes { raw in
            let ctx = CGContext(data: raw.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                bytesPerRow: width * 4, space: CGColorSpaceCreateDeviceRGB(),
                                bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)!
            return ctx.makeImage()!  // copies the pixels
        }
    }
}

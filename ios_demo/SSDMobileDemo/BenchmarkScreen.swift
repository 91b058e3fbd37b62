import CoreML
import OSLog
import SSDMobileKit
import SwiftUI
import UIKit

/// On-device drift, then latency:
///   drift     the artifact's golden data (`ssdmobile export --golden N`, bundled beside it) run
///             through Core ML here against the float model's detections (the Kit's DriftCheck)
///   forward   MLModel.prediction on a fixed input image (the pipeline: model + NMS)
///   post-processing   the pipeline's outputs -> detections (the Kit's Postprocessor)
///   end-to-end        the full VNCoreMLRequest on a fixed 640x480 frame (resize + model + NMS)
/// median and p90 as ssdmobile/bench.py computes them (the Kit's LatencyStats). One device result
/// per run (the Kit's DeviceResult, the format `ssdmobile device-report` reads) is saved to
/// Documents/results/ and offered to share, and logged (subsystem org.ssdmobile.demo, category benchmark).
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
        var outputs: [[[Float]]] = []
        for i in 0..<check.images {
            var features = model.thresholds
            features[inputName] = try MLFeatureValue(cgImage: try CGImage.rgb(try check.inputImage(i)),
                                                     constraint: constraint, options: nil)
            let out = try model.model.prediction(from: MLDictionaryFeatureProvider(dictionary: features))
            outputs.append(try out.outputs(of: model.sidecar))
        }
        return try check.check(outputs: outputs)
    }

    private func benchmark(warmup: Int, runs: Int) throws -> (String, URL) {
        let frame = try CGImage.rgbx(SyntheticFrame.rgbx(width: 640, height: 480), width: 640, height: 480)
        let s = model.sidecar
        let imageInput = model.model.modelDescription.inputDescriptionsByName.first { $0.value.type == .image }
        guard let imageInput, let constraint = imageInput.value.imageConstraint else {
            throw KitError("\(s.artifact): the model has no image input")
        }
        guard let sha = s.artifactSha256 else {
            throw KitError("\(s.artifact): the sidecar has no artifact_sha256; export the model again")
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
            if let last {
                _ = try model.postprocessor.run(try last.outputs(of: s))
            }
            post.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            _ = try model.detect(frame, orientation: .up)
            vision.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        let c = try LatencyStats(coreml), p = try LatencyStats(post), v = try LatencyStats(vision)
        var sys = utsname()
        uname(&sys)
        let machine = withUnsafeBytes(of: &sys.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let os = "iOS \(UIDevice.current.systemVersion)"
        let result = DeviceResult.benchmark(
            artifact: s.artifact, artifactSha256: sha, model: s.model, precision: s.precision, nmsInGraph: s.nms.inGraph,
            device: DeviceInfo(name: machine, soc: "unknown", os: os),
            runtime: RuntimeInfo(name: "Core ML", version: os, threads: 0, backend: "compute units: all"),
            warmup: warmup, forward: c, postprocess: p, endToEnd: v, drift: driftResult)
        let documents = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
        let url = try result.write(into: documents.appendingPathComponent("results"))
        let json = try result.jsonLine()
        log.info("\(c.summary("\(s.artifact) Core ML prediction"), privacy: .public)")
        log.info("\(v.summary("\(s.artifact) Vision request"), privacy: .public)")
        log.info("\(json, privacy: .public)")
        print(json)
        return (BenchmarkText.screen(result: result, forward: c, postprocess: p, endToEnd: v, savedAs: url.lastPathComponent), url)
    }
}

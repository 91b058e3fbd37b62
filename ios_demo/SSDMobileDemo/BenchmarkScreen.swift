import CoreML
import OSLog
import SwiftUI
import UIKit

/// On-device latency: warm-up runs, then N timed runs of
///   Core ML   MLModel.prediction on a fixed input image (the pipeline: model + NMS)
///   Vision    the full VNCoreMLRequest on a fixed 640x480 frame (resize + model + NMS)
/// median and p90 as ssdmobile/bench.py computes them, shown here and logged (subsystem
/// org.ssdmobile.demo, category benchmark; one JSON line per run of the screen).
struct BenchmarkScreen: View {
    let model: LoadedModel
    @State private var warmup = 5
    @State private var runs = 50
    @State private var result = ""
    @State private var running = false
    private let log = Logger(subsystem: "org.ssdmobile.demo", category: "benchmark")

    var body: some View {
        Form {
            Stepper("warm-up runs: \(warmup)", value: $warmup, in: 0...100)
            Stepper("timed runs: \(runs)", value: $runs, in: 1...1000, step: 10)
            Button(running ? "running ..." : "Run") { start() }.disabled(running)
            Text(result).font(.caption.monospaced()).textSelection(.enabled)
        }
    }

    private func start() {
        running = true
        result = "running: \(warmup) warm-up, \(runs) timed runs ..."
        let (w, n) = (warmup, runs)
        DispatchQueue.global(qos: .userInitiated).async {
            let text: String
            do { text = try benchmark(warmup: w, runs: n) } catch { text = "failed: \(error.localizedDescription)" }
            DispatchQueue.main.async {
                result = text
                running = false
            }
        }
    }

    private func benchmark(warmup: Int, runs: Int) throws -> String {
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

        for _ in 0..<warmup {
            _ = try model.model.prediction(from: provider)
            _ = try model.detect(frame, orientation: .up)
        }
        var coreml: [Double] = []
        var vision: [Double] = []
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            _ = try model.model.prediction(from: provider)
            coreml.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        for _ in 0..<runs {
            let t0 = CFAbsoluteTimeGetCurrent()
            _ = try model.detect(frame, orientation: .up)
            vision.append((CFAbsoluteTimeGetCurrent() - t0) * 1000)
        }
        let c = LatencyStats(coreml), v = LatencyStats(vision)
        var sys = utsname()
        uname(&sys)
        let machine = withUnsafeBytes(of: &sys.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let device = "\(machine), iOS \(UIDevice.current.systemVersion)"
        let json = """
        {"artifact": "\(s.artifact)", "model": "\(s.model)", "precision": "\(s.precision)", "device": "\(device)", \
        "compute_units": "all", "warmup": \(warmup), "runs": \(runs), "coreml_median_ms": \(c.medianMs), \
        "coreml_p90_ms": \(c.p90Ms), "vision_median_ms": \(v.medianMs), "vision_p90_ms": \(v.p90Ms)}
        """
        log.info("\(c.summary("\(s.artifact) Core ML prediction"), privacy: .public)")
        log.info("\(v.summary("\(s.artifact) Vision request"), privacy: .public)")
        log.info("\(json, privacy: .public)")
        print(json)
        return """
        \(s.artifact)
        \(device), compute units: all (CPU, GPU, Neural Engine)
        \(warmup) warm-up, \(runs) timed runs

        \(c.summary("Core ML prediction"))
        \(v.summary("Vision 640x480"))

        Console.app (subsystem org.ssdmobile.demo) shows the same numbers and a JSON line.
        """
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

import Foundation
import SSDMobileKit
import XCTest

/// Paths and helpers the tests share.
enum Repo {
    /// The repository root: this file is ios_demo/SSDMobileKit/Tests/SSDMobileKitTests/Support.swift.
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url
    }()

    /// tests/vectors of the repository (SSDMOBILE_VECTORS_DIR overrides it, for trying new cases).
    static var vectors: URL {
        if let dir = ProcessInfo.processInfo.environment["SSDMOBILE_VECTORS_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return root.appendingPathComponent("tests/vectors")
    }

    /// Comma-separated directories of an environment variable; nil when it is unset or empty.
    static func dirs(_ variable: String) -> [URL]? {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return nil }
        return value.split(separator: ",").map { URL(fileURLWithPath: String($0).trimmingCharacters(in: .whitespaces)) }
    }

    static func data(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw KitError("cannot read \(url.path): \(error.localizedDescription)")
        }
    }
}

/// |got - want| <= tol, element by element, with a message naming the place.
func assertClose(_ got: [Double], _ want: [Double], _ tol: Double, _ what: @autoclosure () -> String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard got.count == want.count else {
        XCTFail("\(what()): \(got.count) values, expected \(want.count)", file: file, line: line)
        return
    }
    for (i, (g, w)) in zip(got, want).enumerated() where !(abs(g - w) <= tol) {
        XCTFail("\(what())[\(i)]: \(g) != \(w) (tolerance \(tol))", file: file, line: line)
        return
    }
}

extension Detection {
    var box: [Double] { [Double(x1), Double(y1), Double(x2), Double(y2)] }

    init(_ v: VectorDetection) {
        self.init(x1: Float(v.box[0]), y1: Float(v.box[1]), x2: Float(v.box[2]), y2: Float(v.box[3]),
                  score: Float(v.score), label: v.label)
    }
}

/// Small files made in code, for the tests that need no fixtures.
enum Sample {
    /// A Core ML NMS-pipeline sidecar of a 3-class model (background, cat, dog) with 2 anchors.
    static func sidecar(nmsInGraph: Bool = true) -> Sidecar {
        let outputs = nmsInGraph
            ? [OutputSpec(name: OutputName.confidence, shape: [-1, 2], dtype: "float32", meaning: "scores of class_names[1:]"),
               OutputSpec(name: OutputName.coordinates, shape: [-1, 4], dtype: "float32", meaning: "cx, cy, w, h")]
            : [OutputSpec(name: OutputName.boxEncodings, shape: [1, 2, 4], dtype: "float32", meaning: "raw"),
               OutputSpec(name: OutputName.classLogits, shape: [1, 2, 3], dtype: "float32", meaning: "raw")]
        return Sidecar(
            format: Sidecar.format, schemaVersion: Sidecar.version, ssdmobileVersion: "0.0.0", model: "tiny",
            target: nmsInGraph ? "coreml" : "executorch", precision: "fp32",
            artifact: nmsInGraph ? "tiny_coreml_fp32_nms.mlpackage" : "tiny_executorch_fp32.pte",
            input: InputSpec(name: "image", shape: [1, 3, 64, 64], layout: nmsInGraph ? "image_RGB" : "NCHW",
                             dtype: nmsInGraph ? "uint8" : "float32", color: "RGB"),
            preprocess: PreprocessSpec(size: [64, 64], resize: "bilinear", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
                                       inputRange: [0, 255], inGraph: nmsInGraph),
            classNames: ["__background__", "cat", "dog"], backgroundClass: 0, outputs: outputs,
            decode: DecodeSpec(anchorFormat: "cxcywh_normalized", anchors: [[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]],
                               boxCoder: BoxCoderSpec(weights: [10, 10, 5, 5], order: "xywh", clamp: 4.135),
                               boxFormat: "xyxy_normalized", score: "softmax"),
            nms: NmsSpec(inGraph: nmsInGraph, iouThresh: 0.5, scoreThresh: 0.3, topkCandidates: nil, maxPerClass: nil,
                         maxDetections: 10),
            quantization: nil, checkpoint: nil, metrics: nil, artifactSha256: String(repeating: "ab", count: 32))
    }

    static func deviceResult(drift: DriftResult? = DriftResult(images: 4, maxAbsDiffRaw: 7.62939453125e-05,
                                                               rawWithinTolerance: true, nonFinite: 0, detectionsMatched: 4,
                                                               minImagesMatched: 4, passed: true)) throws -> DeviceResult {
        DeviceResult.benchmark(
            artifact: "tiny_coreml_fp32_nms.mlpackage", artifactSha256: String(repeating: "ab", count: 32), model: "tiny",
            precision: "fp32", nmsInGraph: true, device: DeviceInfo(name: "iPhone15,2", soc: "A16 Bionic", os: "iOS 17.5"),
            runtime: RuntimeInfo(name: "Core ML", version: "iOS 17.5", threads: 0, backend: "compute units: all"),
            warmup: 5, forward: try LatencyStats([12.5, 12.0, 13.25, 12.75]), postprocess: try LatencyStats([1.75, 2.0]),
            endToEnd: try LatencyStats([20.125, 24.5, 19.0]), drift: drift,
            finished: Date(timeIntervalSince1970: 1_735_787_045))
    }
}

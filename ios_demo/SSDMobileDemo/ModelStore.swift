import CoreML
import Foundation
import SSDMobileKit
import Vision

/// A bundled model: the Core ML pipeline `ssdmobile bundle --app ios` put in Models/, and its sidecar.
struct BundledModel: Identifiable, Hashable {
    let name: String      // artifact stem, e.g. ssdlite_mobilenet_v2_person_coreml_fp16_nms
    let modelURL: URL     // .mlmodelc (compiled by Xcode) or .mlpackage (compiled at first use)
    let sidecarURL: URL
    /// `<stem>.golden.bundle`: golden data for the drift check (`ssdmobile export --golden N`), if bundled
    let goldenURL: URL?
    var id: String { name }
}

enum ModelStore {
    /// Xcode compiles an .mlpackage in the app's sources into <stem>.mlmodelc and copies <stem>.json
    /// to the bundle; both are looked for at the bundle root and under Models/.
    static func list() -> [BundledModel] {
        let bundle = Bundle.main
        var found: [String: BundledModel] = [:]
        for sub in [nil, "Models"] as [String?] {
            for ext in ["mlmodelc", "mlpackage"] {
                for url in bundle.urls(forResourcesWithExtension: ext, subdirectory: sub) ?? [] {
                    let stem = url.deletingPathExtension().lastPathComponent
                    guard found[stem] == nil,
                          let json = bundle.url(forResource: stem, withExtension: "json", subdirectory: sub)
                            ?? bundle.url(forResource: stem, withExtension: "json") else { continue }
                    // a .bundle folder is copied into the app whole (a plain folder's files would be flattened)
                    let golden = bundle.url(forResource: "\(stem).golden", withExtension: "bundle", subdirectory: sub)
                        ?? bundle.url(forResource: "\(stem).golden", withExtension: "bundle")
                    found[stem] = BundledModel(name: stem, modelURL: url, sidecarURL: json, goldenURL: golden)
                }
            }
        }
        return found.values.sorted { $0.name < $1.name }
    }

    /// Loads the sidecar (parsed strictly by the Kit, then checked: Core ML, NMS pipeline), the
    /// MLModel and a Vision model whose NMS thresholds are the sidecar's (the pipeline takes them
    /// as optional inputs).
    static func load(_ m: BundledModel, computeUnits: MLComputeUnits = .all) async throws -> LoadedModel {
        let source = m.sidecarURL.lastPathComponent
        let sidecar = try Sidecar.parse(try Data(contentsOf: m.sidecarURL), source: source)
        try sidecar.checkRunsOnIOS(source: source)
        let postprocessor = try Postprocessor(sidecar: sidecar)
        var url = m.modelURL
        if url.pathExtension == "mlpackage" {
            url = try await MLModel.compileModel(at: url)
        }
        let config = MLModelConfiguration()
        config.computeUnits = computeUnits
        let model = try MLModel(contentsOf: url, configuration: config)
        let vision = try VNCoreMLModel(for: model)
        let inputs = model.modelDescription.inputDescriptionsByName
        var thresholds: [String: MLFeatureValue] = [:]
        if inputs["iouThreshold"] != nil { thresholds["iouThreshold"] = MLFeatureValue(double: sidecar.nms.iouThresh) }
        if inputs["confidenceThreshold"] != nil {
            thresholds["confidenceThreshold"] = MLFeatureValue(double: sidecar.nms.scoreThresh)
        }
        if !thresholds.isEmpty { vision.featureProvider = try MLDictionaryFeatureProvider(dictionary: thresholds) }
        return LoadedModel(info: m, sidecar: sidecar, postprocessor: postprocessor, model: model, vision: vision,
                           thresholds: thresholds)
    }
}

/// One loaded model, used by the camera, photo and benchmark screens.
final class LoadedModel {
    let info: BundledModel
    let sidecar: Sidecar
    let postprocessor: Postprocessor
    let model: MLModel
    let vision: VNCoreMLModel
    let thresholds: [String: MLFeatureValue]

    init(info: BundledModel, sidecar: Sidecar, postprocessor: Postprocessor, model: MLModel, vision: VNCoreMLModel,
         thresholds: [String: MLFeatureValue]) {
        self.info = info
        self.sidecar = sidecar
        self.postprocessor = postprocessor
        self.model = model
        self.vision = vision
        self.thresholds = thresholds
    }

    /// Vision on one image: resize the whole image to the model input (.scaleFill, what the model
    /// was exported for: preprocess.size without cropping), run the pipeline, return its
    /// VNRecognizedObjectObservation. `orientation` makes the image upright.
    func detect(_ image: CGImage, orientation: CGImagePropertyOrientation) throws -> [VNRecognizedObjectObservation] {
        try detect(VNImageRequestHandler(cgImage: image, orientation: orientation))
    }

    func detect(_ buffer: CVPixelBuffer, orientation: CGImagePropertyOrientation) throws -> [VNRecognizedObjectObservation] {
        try detect(VNImageRequestHandler(cvPixelBuffer: buffer, orientation: orientation))
    }

    /// Vision's observations, best first, as the overlay draws them.
    func shown(_ observations: [VNRecognizedObjectObservation]) -> [ShownDetection] {
        observations.map { ShownDetection($0, sidecar: sidecar) }
    }

    private func detect(_ handler: VNImageRequestHandler) throws -> [VNRecognizedObjectObservation] {
        let request = VNCoreMLRequest(model: vision)
        request.imageCropAndScaleOption = .scaleFill
        try handler.perform([request])
        return (request.results as? [VNRecognizedObjectObservation] ?? [])
            .sorted { ($0.labels.first?.confidence ?? 0) > ($1.labels.first?.confidence ?? 0) }
    }
}

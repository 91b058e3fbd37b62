import Foundation

/// Output names of ssdmobile's export contract (ssdmobile/export/_common.py raw_outputs,
/// nms_outputs; ssdmobile/export/coreml.py for the Core ML pipeline).
public enum OutputName {
    /// NMS not in the graph: [1, A, 4] raw encodings, decoded with decode.anchors and decode.box_coder
    public static let boxEncodings = "box_encodings"
    /// NMS not in the graph: [1, A, C] raw logits (column 0 background), scored with decode.score
    public static let classLogits = "class_logits"
    /// NMS in the graph: [1, K, 4] normalized xyxy, [1, K] descending scores, [1, K] label ids, [1] valid rows
    public static let boxes = "boxes"
    public static let scores = "scores"
    public static let labels = "labels"
    public static let numDetections = "num_detections"
    /// Core ML NMS pipeline: [K, C-1] scores of class_names[1:], [K, 4] normalized (cx, cy, w, h)
    public static let confidence = "confidence"
    public static let coordinates = "coordinates"
}

extension Sidecar {
    public var numClasses: Int { classNames.count }

    /// Label id -> class name, "class N" for an id the sidecar does not name.
    public func label(_ id: Int) -> String { id >= 0 && id < classNames.count ? classNames[id] : "class \(id)" }

    /// Class name -> label id (Vision reports the pipeline's labels by name).
    public func labelID(named name: String) -> Int? { classNames.firstIndex(of: name) }

    public func hasOutput(_ name: String) -> Bool { outputs.contains { $0.name == name } }

    /// Index of the output with this name (see OutputName), or an error naming what is there.
    public func outputIndex(_ name: String) throws -> Int {
        guard let i = outputs.firstIndex(where: { $0.name == name }) else {
            throw KitError("sidecar of '\(artifact)' has no output named '\(name)' (outputs: "
                + outputs.map { $0.name }.joined(separator: ", ") + ")")
        }
        return i
    }

    /// decode.anchors, [A * 4] normalized (cx, cy, w, h) in float32: what BoxDecoder reads.
    public var flatAnchors: [Float] { decode.anchors.flatMap { row in row.map { Float($0) } } }

    /// The iOS app runs Core ML NMS pipelines with Vision: refuses any other artifact, in one line.
    public func checkRunsOnIOS(source: String) throws {
        guard target == "coreml" else {
            throw KitError("\(source) is a \(target) sidecar; this app runs Core ML (.mlpackage) artifacts")
        }
        guard nms.inGraph, hasOutput(OutputName.confidence), hasOutput(OutputName.coordinates) else {
            throw KitError("\(source): the model has no NMS pipeline; export with `ssdmobile export --target coreml --nms`")
        }
    }
}

/// Detections read from Core ML's NMS pipeline, and how many of its values were NaN or infinite.
public struct PipelineDetections: Equatable, Sendable {
    public var detections: [Detection]
    public var nonFinite: Int

    public init(detections: [Detection], nonFinite: Int) {
        self.detections = detections
        self.nonFinite = nonFinite
    }
}

/// What an app does with the artifact's outputs, chosen by the sidecar alone:
///  - NMS not in the graph: "box_encodings" [1, A, 4] and "class_logits" [1, A, C] -> decode with
///    the sidecar's anchors and box coder, score, per-class NMS;
///  - NMS in the graph: "boxes" [1, K, 4], "scores" [1, K], "labels" [1, K] and optionally
///    "num_detections" [1] -> the first valid rows;
///  - Core ML's NMS pipeline: "confidence" [K, C-1] and "coordinates" [K, 4] (cx, cy, w, h).
/// Outputs are found by name; `outputs` are the artifact's outputs as flat float arrays (integer
/// labels converted), in the sidecar's output order.
public struct Postprocessor: Sendable {
    public let sidecar: Sidecar
    public let coder: BoxCoder
    public let score: ScoreFunction
    public let nms: NmsConfig
    /// decode.anchors flattened once
    public let anchors: [Float]

    public init(sidecar: Sidecar) throws {
        self.sidecar = sidecar
        coder = try BoxCoder(sidecar.decode.boxCoder)
        score = try ScoreFunction(name: sidecar.decode.score)
        nms = NmsConfig(sidecar.nms)
        anchors = sidecar.flatAnchors
    }

    public func run(_ outputs: [[Float]]) throws -> [Detection] {
        guard outputs.count == sidecar.outputs.count else {
            throw KitError("the artifact returned \(outputs.count) outputs, its sidecar describes \(sidecar.outputs.count)")
        }
        if !sidecar.nms.inGraph {
            return try fromRaw(boxEncodings: outputs[sidecar.outputIndex(OutputName.boxEncodings)],
                               classLogits: outputs[sidecar.outputIndex(OutputName.classLogits)])
        }
        if sidecar.hasOutput(OutputName.confidence) {
            let i = try sidecar.outputIndex(OutputName.confidence)
            let shape = sidecar.outputs[i].shape
            let classes = shape.count == 2 && shape[1] > 0 ? shape[1] : sidecar.numClasses - 1
            return try Self.fromPipeline(confidence: outputs[i],
                                         coordinates: outputs[sidecar.outputIndex(OutputName.coordinates)],
                                         foregroundClasses: classes).detections
        }
        return try fromGraphNms(outputs)
    }

    /// boxEncodings [A * 4], classLogits [A * C] of one image.
    public func fromRaw(boxEncodings: [Float], classLogits: [Float]) throws -> [Detection] {
        let boxes = try BoxDecoder.decode(boxEncodings: boxEncodings, anchors: anchors, coder: coder)
        let scores = try BoxDecoder.scores(classLogits: classLogits, numClasses: sidecar.numClasses, score: score)
        return try Nms.perClass(boxes: boxes, scores: scores, numClasses: sidecar.numClasses, config: nms)
    }

    /// NMS in the graph: the valid rows of boxes / scores / labels (num_detections when there is one).
    public func fromGraphNms(_ outputs: [[Float]]) throws -> [Detection] {
        let boxes = outputs[try sidecar.outputIndex(OutputName.boxes)]
        let scores = outputs[try sidecar.outputIndex(OutputName.scores)]
        let labels = outputs[try sidecar.outputIndex(OutputName.labels)]
        let hasCount = sidecar.hasOutput(OutputName.numDetections)
        var n = Swift.min(scores.count, labels.count, boxes.count / 4)
        if hasCount, let count = outputs[try sidecar.outputIndex(OutputName.numDetections)].first {
            guard count.isFinite else { return [] }
            n = Swift.min(n, Swift.max(0, Int(count)))
        }
        var out: [Detection] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            // padded rows (no count output) carry score 0 or a negative label
            if !hasCount && (scores[i] <= 0 || labels[i] < 0) { continue }
            guard labels[i].isFinite else { continue }
            out.append(Detection(x1: boxes[i * 4], y1: boxes[i * 4 + 1], x2: boxes[i * 4 + 2], y2: boxes[i * 4 + 3],
                                 score: scores[i], label: Int(labels[i].rounded())))
        }
        return out
    }

    /// Core ML's NMS pipeline: confidence [K * (C-1)] (foreground classes: label = column + 1) and
    /// coordinates [K * 4] (cx, cy, w, h, normalized) -> detections, normalized xyxy, by descending
    /// score; each row's best finite class. Non-finite values are counted, not used.
    public static func fromPipeline(confidence: [Float], coordinates: [Float], foregroundClasses: Int) throws -> PipelineDetections {
        guard foregroundClasses > 0, confidence.count % foregroundClasses == 0 else {
            throw KitError("confidence holds \(confidence.count) values, not rows of \(foregroundClasses) classes")
        }
        let k = confidence.count / foregroundClasses
        guard coordinates.count == k * 4 else {
            throw KitError("coordinates hold \(coordinates.count) values for \(k) detections (expected \(k * 4))")
        }
        var out: [Detection] = []
        var nonFinite = 0
        for i in 0..<k {
            var best = -1
            var score: Float = -1
            for c in 0..<foregroundClasses {
                let v = confidence[i * foregroundClasses + c]
                if !v.isFinite { nonFinite += 1; continue }
                if v > score { score = v; best = c }
            }
            let cx = coordinates[i * 4], cy = coordinates[i * 4 + 1], w = coordinates[i * 4 + 2], h = coordinates[i * 4 + 3]
            let bad = [cx, cy, w, h].filter { !$0.isFinite }.count
            nonFinite += bad
            guard best >= 0, bad == 0 else { continue }
            out.append(Detection(x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score: score, label: best + 1))
        }
        return PipelineDetections(detections: Nms.stableSortedByScore(out), nonFinite: nonFinite)
    }
}

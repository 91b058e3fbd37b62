import Foundation

/// The sidecar JSON `ssdmobile export` writes next to every artifact (ssdmobile/sidecar.py; its
/// JSON Schema is ssdmobile/schema/sidecar.schema.json). The app decodes only the properties
/// below and ignores the rest. tests/test_sidecar_fields.py checks these structs against the
/// schema (JSON names from CodingKeys, types, non-optional = required and non-null there): keep
/// to plain `let name: Type` properties and `enum CodingKeys` so that check can read them.
struct Sidecar: Decodable {
    static let format = "ssdmobile-sidecar"
    static let schemaVersion = 1

    struct Input: Decodable {
        let name: String
        let shape: [Int]
        let layout: String
        let dtype: String
    }

    struct Preprocess: Decodable {
        /// (H, W) the whole image is resized to (no aspect-preserving crop): Vision's .scaleFill
        let size: [Int]
        let resize: String
    }

    struct Output: Decodable {
        let name: String
    }

    struct Nms: Decodable {
        let inGraph: Bool
        let iouThresh: Double
        let scoreThresh: Double
        let maxDetections: Int

        enum CodingKeys: String, CodingKey {
            case inGraph = "in_graph", iouThresh = "iou_thresh", scoreThresh = "score_thresh"
            case maxDetections = "max_detections"
        }
    }

    let format: String
    let schemaVersion: Int
    let model: String
    let target: String
    let precision: String
    let artifact: String
    let input: Input
    let preprocess: Preprocess
    let classNames: [String]
    let outputs: [Output]
    let nms: Nms
    /// sha256 of the exported artifact: what a device result is matched to its report row by (the
    /// app runs Xcode's compiled form, so it cannot hash the .mlpackage itself)
    let artifactSha256: String?

    enum CodingKeys: String, CodingKey {
        case format, model, target, precision, artifact, input, preprocess, outputs, nms
        case schemaVersion = "schema_version", classNames = "class_names", artifactSha256 = "artifact_sha256"
    }

    enum LoadError: LocalizedError {
        case notSidecar(String), tooNew(String, Int), wrongTarget(String, String), noNmsPipeline(String)
        case unreadable(String, String)

        var errorDescription: String? {
            switch self {
            case .notSidecar(let f): return "\(f): not an ssdmobile sidecar"
            case .tooNew(let f, let v): return "\(f): schema_version \(v) is newer than this app understands; update the app"
            case .wrongTarget(let f, let t): return "\(f) is a \(t) sidecar; this app runs Core ML (.mlpackage) artifacts"
            case .noNmsPipeline(let f): return "\(f): the model has no NMS pipeline; export with `ssdmobile export --target coreml --nms`"
            case .unreadable(let f, let why): return "\(f): \(why)"
            }
        }
    }

    static func load(from url: URL) throws -> Sidecar {
        let name = url.lastPathComponent
        let sidecar: Sidecar
        do {
            sidecar = try JSONDecoder().decode(Sidecar.self, from: Data(contentsOf: url))
        } catch let DecodingError.keyNotFound(key, ctx) {
            let path = (ctx.codingPath.map { $0.stringValue } + [key.stringValue]).joined(separator: ".")
            throw LoadError.unreadable(name, "sidecar lacks \(path)")
        } catch {
            throw LoadError.unreadable(name, error.localizedDescription)
        }
        guard sidecar.format == format else { throw LoadError.notSidecar(name) }
        guard sidecar.schemaVersion <= schemaVersion else { throw LoadError.tooNew(name, sidecar.schemaVersion) }
        guard sidecar.target == "coreml" else { throw LoadError.wrongTarget(name, sidecar.target) }
        guard sidecar.nms.inGraph else { throw LoadError.noNmsPipeline(name) }
        return sidecar
    }

    /// Label id -> name; Vision reports the pipeline's own labels (class_names[1:]), this is for display fallbacks.
    func label(_ id: Int) -> String { id >= 0 && id < classNames.count ? classNames[id] : "class \(id)" }
}

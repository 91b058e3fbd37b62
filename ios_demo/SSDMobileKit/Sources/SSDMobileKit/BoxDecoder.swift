import Foundation

/// How box encodings are turned into boxes (the sidecar's decode.box_coder), in float32.
public struct BoxCoder: Equatable, Sendable {
    public var wx: Float
    public var wy: Float
    public var ww: Float
    public var wh: Float
    /// true: encodings are (ty, tx, th, tw) as TensorFlow; false: (dx, dy, dw, dh) as torchvision
    public var yxhw: Bool
    /// upper bound for dw/dh before exp; nil = none
    public var clamp: Float?

    public init(wx: Float, wy: Float, ww: Float, wh: Float, yxhw: Bool, clamp: Float?) {
        self.wx = wx
        self.wy = wy
        self.ww = ww
        self.wh = wh
        self.yxhw = yxhw
        self.clamp = clamp
    }

    public init(_ spec: BoxCoderSpec) throws {
        guard spec.weights.count == 4 else { throw KitError("box_coder.weights: expected 4 values, got \(spec.weights.count)") }
        guard spec.order == "xywh" || spec.order == "yxhw" else { throw KitError("box_coder.order: unknown order \(spec.order)") }
        self.init(wx: Float(spec.weights[0]), wy: Float(spec.weights[1]), ww: Float(spec.weights[2]),
                  wh: Float(spec.weights[3]), yxhw: spec.order == "yxhw", clamp: spec.clamp.map { Float($0) })
    }
}

/// The sidecar's decode.score: softmax over each anchor's classes, or a sigmoid per class.
public enum ScoreFunction: String, Sendable, CaseIterable {
    case softmax
    case sigmoid

    public init(name: String) throws {
        guard let f = ScoreFunction(rawValue: name) else { throw KitError("unknown score function \(name)") }
        self = f
    }
}

/// Raw core outputs -> normalized boxes and class scores, as ssdmobile/ops/boxes.py does it
/// (decode_boxes, class_scores) and the Kotlin BoxDecoder: float32 box arithmetic, exp, softmax
/// and sigmoid in double, then float.
public enum BoxDecoder {
    /// boxEncodings: [A * 4] in the coder's channel order; anchors: [A * 4] normalized (cx, cy, w, h).
    /// Returns [A * 4] (x1, y1, x2, y2), normalized, not clamped (NMS clamps).
    public static func decode(boxEncodings: [Float], anchors: [Float], coder: BoxCoder) throws -> [Float] {
        guard boxEncodings.count == anchors.count, boxEncodings.count % 4 == 0 else {
            throw KitError("box_encodings hold \(boxEncodings.count / 4) boxes, the sidecar has \(anchors.count / 4) "
                + "anchors: the artifact and its sidecar do not belong together")
        }
        var out = [Float](repeating: 0, count: boxEncodings.count)
        let yxhw = coder.yxhw
        boxEncodings.withUnsafeBufferPointer { enc in
            anchors.withUnsafeBufferPointer { anc in
                out.withUnsafeMutableBufferPointer { o in
                    for a in 0..<(enc.count / 4) {
                        let i = a * 4
                        let ex = yxhw ? enc[i + 1] : enc[i]
                        let ey = yxhw ? enc[i] : enc[i + 1]
                        let ew = yxhw ? enc[i + 3] : enc[i + 2]
                        let eh = yxhw ? enc[i + 2] : enc[i + 3]
                        let dx = ex / coder.wx
                        let dy = ey / coder.wy
                        var dw = ew / coder.ww
                        var dh = eh / coder.wh
                        if let clamp = coder.clamp {
                            if dw > clamp { dw = clamp }
                            if dh > clamp { dh = clamp }
                        }
                        let acx = anc[i], acy = anc[i + 1], aw = anc[i + 2], ah = anc[i + 3]
                        let cx = dx * aw + acx
                        let cy = dy * ah + acy
                        let halfW = 0.5 * Float(Foundation.exp(Double(dw))) * aw
                        let halfH = 0.5 * Float(Foundation.exp(Double(dh))) * ah
                        o[i] = cx - halfW
                        o[i + 1] = cy - halfH
                        o[i + 2] = cx + halfW
                        o[i + 3] = cy + halfH
                    }
                }
            }
        }
        return out
    }

    /// classLogits: [A * C] -> scores [A * C].
    public static func scores(classLogits: [Float], numClasses: Int, score: ScoreFunction) throws -> [Float] {
        guard numClasses > 0, classLogits.count % numClasses == 0 else {
            throw KitError("class_logits size \(classLogits.count) is not a multiple of the sidecar's \(numClasses) classes")
        }
        var out = [Float](repeating: 0, count: classLogits.count)
        classLogits.withUnsafeBufferPointer { l in
            out.withUnsafeMutableBufferPointer { o in
                switch score {
                case .sigmoid:
                    for i in 0..<l.count { o[i] = Float(1.0 / (1.0 + Foundation.exp(-Double(l[i])))) }
                case .softmax:
                    for a in 0..<(l.count / numClasses) {
                        let base = a * numClasses
                        var mx = -Float.infinity
                        for c in 0..<numClasses where l[base + c] > mx { mx = l[base + c] }
                        var sum = 0.0
                        for c in 0..<numClasses { sum += Foundation.exp(Double(l[base + c] - mx)) }
                        for c in 0..<numClasses { o[base + c] = Float(Foundation.exp(Double(l[base + c] - mx)) / sum) }
                    }
                }
            }
        }
        return out
    }
}

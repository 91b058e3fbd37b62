import Foundation

/// The NMS settings (the sidecar's nms block), thresholds in float32 as the reference compares them.
public struct NmsConfig: Equatable, Sendable {
    public var iouThresh: Float
    public var scoreThresh: Float
    /// per class, before NMS; nil = all
    public var topkCandidates: Int?
    /// per class, after NMS; nil = no cap
    public var maxPerClass: Int?
    public var maxDetections: Int

    public init(iouThresh: Float, scoreThresh: Float, topkCandidates: Int? = nil, maxPerClass: Int? = nil,
                maxDetections: Int) {
        self.iouThresh = iouThresh
        self.scoreThresh = scoreThresh
        self.topkCandidates = topkCandidates
        self.maxPerClass = maxPerClass
        self.maxDetections = maxDetections
    }

    public init(_ spec: NmsSpec) {
        self.init(iouThresh: Float(spec.iouThresh), scoreThresh: Float(spec.scoreThresh),
                  topkCandidates: spec.topkCandidates, maxPerClass: spec.maxPerClass, maxDetections: spec.maxDetections)
    }
}

/// Per-class NMS exactly as ssdmobile/ops/boxes.py::nms_per_class (torchvision SSD's
/// postprocess_detections, plus TF's max_per_class) and the Kotlin Nms:
///  1. boxes clamped to [0, 1];
///  2. candidates: every (anchor, class >= 1) with score > scoreThresh;
///  3. each class keeps its topkCandidates best candidates (descending score, ties in anchor order);
///  4. greedy NMS within each class: a box is dropped when its IoU with a kept, higher-scored box
///     of the same class is > iouThresh (float32 IoU, as torchvision's kernel);
///  5. all kept boxes sorted by descending score (stable: ties keep class, then NMS order);
///     optionally only each class's best maxPerClass;
///  6. the first maxDetections.
public enum Nms {
    /// boxes: [A * 4] normalized (x1, y1, x2, y2); scores: [A * C], column 0 background.
    public static func perClass(boxes: [Float], scores: [Float], numClasses: Int, config cfg: NmsConfig) throws -> [Detection] {
        let numAnchors = boxes.count / 4
        guard numClasses > 0, boxes.count % 4 == 0, scores.count == numAnchors * numClasses else {
            throw KitError("scores hold \(scores.count) values, expected \(numAnchors) anchors x \(numClasses) classes")
        }
        let clamped = boxes.map { Swift.min(Swift.max($0, 0), 1) }
        var kept: [Detection] = []
        scores.withUnsafeBufferPointer { s in
            clamped.withUnsafeBufferPointer { b in
                var cand: [Int] = []
                cand.reserveCapacity(numAnchors)
                for c in 1..<Swift.max(numClasses, 1) {
                    cand.removeAll(keepingCapacity: true)
                    for a in 0..<numAnchors where s[a * numClasses + c] > cfg.scoreThresh { cand.append(a) }
                    if cand.isEmpty { continue }
                    // descending score, ties in anchor order (the reference's stable argsort)
                    cand.sort { p, q in
                        let sp = s[p * numClasses + c], sq = s[q * numClasses + c]
                        return sp > sq || (sp == sq && p < q)
                    }
                    if let k = cfg.topkCandidates, cand.count > k { cand.removeSubrange(Swift.max(k, 0)...) }
                    for a in greedy(b, cand, cfg.iouThresh) {
                        kept.append(Detection(x1: b[a * 4], y1: b[a * 4 + 1], x2: b[a * 4 + 2], y2: b[a * 4 + 3],
                                              score: s[a * numClasses + c], label: c))
                    }
                }
            }
        }
        var sorted = stableSortedByScore(kept)
        if let maxPerClass = cfg.maxPerClass {
            var perClass: [Int: Int] = [:]
            sorted = sorted.filter { d in
                let n = perClass[d.label, default: 0]
                perClass[d.label] = n + 1
                return n < maxPerClass
            }
        }
        return sorted.count > cfg.maxDetections ? Array(sorted.prefix(Swift.max(cfg.maxDetections, 0))) : sorted
    }

    /// Descending score; equal scores keep their order.
    public static func stableSortedByScore(_ detections: [Detection]) -> [Detection] {
        detections.enumerated().sorted { p, q in
            p.element.score > q.element.score || (p.element.score == q.element.score && p.offset < q.offset)
        }.map { $0.element }
    }

    /// Greedy NMS over anchors already sorted by descending score; the kept anchors in that order.
    static func greedy(_ boxes: UnsafeBufferPointer<Float>, _ order: [Int], _ iouThresh: Float) -> [Int] {
        let n = order.count
        var suppressed = [Bool](repeating: false, count: n)
        var keep: [Int] = []
        for i in 0..<n {
            if suppressed[i] { continue }
            let a = order[i]
            keep.append(a)
            let ax1 = boxes[a * 4], ay1 = boxes[a * 4 + 1], ax2 = boxes[a * 4 + 2], ay2 = boxes[a * 4 + 3]
            let areaA = (ax2 - ax1) * (ay2 - ay1)
            var j = i + 1
            while j < n {
                if !suppressed[j] {
                    let b = order[j]
                    let bx1 = boxes[b * 4], by1 = boxes[b * 4 + 1], bx2 = boxes[b * 4 + 2], by2 = boxes[b * 4 + 3]
                    let w = Swift.max(0, Swift.min(ax2, bx2) - Swift.max(ax1, bx1))
                    let h = Swift.max(0, Swift.min(ay2, by2) - Swift.max(ay1, by1))
                    let inter = w * h
                    let areaB = (bx2 - bx1) * (by2 - by1)
                    if inter / (areaA + areaB - inter) > iouThresh { suppressed[j] = true }
                }
                j += 1
            }
        }
        return keep
    }

    /// IoU of two detections' boxes (0 when the union is empty).
    public static func iou(_ p: Detection, _ q: Detection) -> Float {
        let w = Swift.max(0, Swift.min(p.x2, q.x2) - Swift.max(p.x1, q.x1))
        let h = Swift.max(0, Swift.min(p.y2, q.y2) - Swift.max(p.y1, q.y1))
        let inter = w * h
        let union = (p.x2 - p.x1) * (p.y2 - p.y1) + (q.x2 - q.x1) * (q.y2 - q.y1) - inter
        return union > 0 ? inter / union : 0
    }
}

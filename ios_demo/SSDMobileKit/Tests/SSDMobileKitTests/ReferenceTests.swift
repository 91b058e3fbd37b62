import Foundation
import SSDMobileKit
import XCTest

/// The Kit's decode + NMS against the Python reference on real images (`ssdmobile golden`, written
/// by tests/phone_fixtures.sh: OUT/reference/<name>/ with reference.json, sidecar.json and the raw
/// tensors). Everything is recomputed here from the raw outputs and the sidecar: counts and labels
/// exactly, boxes and scores within 1e-4. Directories: SSDMOBILE_REFERENCE_DIRS (comma-separated).
/// Preprocessing is not checked: the iOS app leaves it to Vision and the Core ML model.
final class ReferenceTests: XCTestCase {
    static let tol: Float = 1e-4

    struct Case {
        let dir: URL
        let sidecar: Sidecar
        let image: ReferenceImage
        var name: String { "\(dir.lastPathComponent)/\(image.image)" }

        func floats(_ t: TensorFile) throws -> [Float] {
            let values = try Float32LE.decode(try Repo.data(dir.appendingPathComponent(t.file)), source: t.file)
            XCTAssertEqual(values.count, t.shape.reduce(1, *), "\(name): \(t.file) against its shape \(t.shape)")
            return values
        }
    }

    private func cases() throws -> [Case] {
        guard let dirs = Repo.dirs("SSDMOBILE_REFERENCE_DIRS") else {
            throw XCTSkip("SSDMOBILE_REFERENCE_DIRS is not set: run ios_demo/SSDMobileKit/test.sh, which writes the "
                + "reference data with tests/phone_fixtures.sh and sets it")
        }
        var out: [Case] = []
        for dir in dirs {
            let ref = try ReferenceData.parse(try Repo.data(dir.appendingPathComponent("reference.json")),
                                              source: "\(dir.lastPathComponent)/reference.json")
            let sidecar = try Sidecar.parse(try Repo.data(dir.appendingPathComponent(ref.sidecar)),
                                            source: "\(dir.lastPathComponent)/\(ref.sidecar)")
            XCTAssertFalse(ref.images.isEmpty, "\(dir.path): no images")
            out += ref.images.map { Case(dir: dir, sidecar: sidecar, image: $0) }
        }
        return out
    }

    private func expected(_ c: Case) -> [Detection] {
        let d = c.image.detections
        XCTAssertEqual(d.count, d.scores.count, c.name)
        return d.scores.indices.map { i in
            let b = d.boxes[i]
            return Detection(x1: Float(b[0]), y1: Float(b[1]), x2: Float(b[2]), y2: Float(b[3]), score: Float(d.scores[i]),
                             label: d.labels[i])
        }
    }

    private func boxDiff(_ p: Detection, _ q: Detection) -> Float {
        max(abs(p.x1 - q.x1), abs(p.y1 - q.y1), abs(p.x2 - q.x2), abs(p.y2 - q.y2))
    }

    func testDetectionsMatchPythonReference() throws {
        var worstBox: Float = 0, worstScore: Float = 0, total = 0, dirs = Set<String>()
        for c in try cases() {
            dirs.insert(c.dir.lastPathComponent)
            let got = try Postprocessor(sidecar: c.sidecar).fromRaw(boxEncodings: try c.floats(c.image.boxEncodings),
                                                                     classLogits: try c.floats(c.image.classLogits))
            let want = expected(c)
            XCTAssertEqual(got.count, want.count, "\(c.name): detection count")
            guard got.count == want.count else { continue }
            // the sorted score sequences agree position by position ...
            for i in want.indices {
                XCTAssertLessThanOrEqual(abs(got[i].score - want[i].score), Self.tol,
                                         "\(c.name): score #\(i) \(got[i].score) vs \(want[i].score)")
            }
            // ... and every reference detection has its own twin (same label, box and score within
            // tol); looked up rather than compared by index, as near-equal scores may sort either way
            var used = [Bool](repeating: false, count: got.count)
            func twin(_ k: Int, _ w: Detection) -> Bool {
                !used[k] && got[k].label == w.label && boxDiff(got[k], w) <= Self.tol && abs(got[k].score - w.score) <= Self.tol
            }
            for (i, w) in want.enumerated() {
                guard let j = twin(i, w) ? i : got.indices.first(where: { twin($0, w) }) else {
                    XCTFail("\(c.name): reference detection #\(i) \(w) has no match in the Kit's output (Kit #\(i): \(got[i]))")
                    continue
                }
                used[j] = true
                worstBox = max(worstBox, boxDiff(got[j], w))
                worstScore = max(worstScore, abs(got[j].score - w.score))
            }
            XCTAssertEqual(got.map { $0.label }.sorted(), want.map { $0.label }.sorted(), "\(c.name): labels")
            total += want.count
        }
        print("reference detections (\(dirs.sorted().joined(separator: ", "))): \(total) matched, max |box diff| "
            + "\(worstBox), max |score diff| \(worstScore) (tolerance \(Self.tol))")
    }

    func testPixelBoxesMatchDetectorOutput() throws {
        for c in try cases() {
            let w = Float(c.image.width), h = Float(c.image.height)
            let px = c.image.detections.boxesPixels
            XCTAssertEqual(px.count, c.image.detections.count, c.name)
            for (i, d) in expected(c).enumerated() where i < px.count {
                let r = PreviewMapping.toImagePixels(d, width: w, height: h)
                let b = px[i].map { Float($0) }
                let diff = max(abs(r.left - b[0]), abs(r.top - b[1]), abs(r.right - b[2]), abs(r.bottom - b[3]))
                XCTAssertLessThanOrEqual(diff, Self.tol * max(w, h), "\(c.name): pixel box #\(i)")
                // fill into a view the image's own size is the identity mapping
                let v = PreviewMapping.toView(d, sourceWidth: w, sourceHeight: h, viewWidth: w, viewHeight: h, mode: .fill)
                XCTAssertEqual(r.left, v.left, accuracy: 1e-3)
                XCTAssertEqual(r.bottom, v.bottom, accuracy: 1e-3)
            }
        }
    }

    func testSidecarsParseAndDescribeTheRawOutputs() throws {
        for c in try cases() {
            XCTAssertFalse(c.sidecar.nms.inGraph, c.name)
            XCTAssertEqual(c.sidecar.decode.anchors.count, c.image.boxEncodings.shape.reduce(1, *) / 4, c.name)
            XCTAssertEqual(c.image.classLogits.shape.last, c.sidecar.numClasses, c.name)
            XCTAssertNoThrow(try c.sidecar.outputIndex(OutputName.boxEncodings))
            XCTAssertNoThrow(try c.sidecar.outputIndex(OutputName.classLogits))
        }
    }
}

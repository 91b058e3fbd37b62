import Foundation
import SSDMobileKit
import XCTest

/// The cross-language test vectors (tests/vectors/*.json, ssdmobile/schema/vectors.py): every case
/// of every section through the Kit, within each case's tolerance. Python (tests/test_vectors.py)
/// and the Kotlin module run the same files; a new case is a new JSON entry, not code here.
final class VectorsTests: XCTestCase {
    struct Loaded {
        let file: String
        let vectors: TestVectors
    }

    static func load() throws -> [Loaded] {
        let dir = Repo.vectors
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let files = names.filter { $0.hasSuffix(".json") }.sorted()
        guard !files.isEmpty else { throw KitError("no test vectors: \(dir.path) has no *.json files") }
        return try files.map { name in
            Loaded(file: name, vectors: try TestVectors.parse(try Repo.data(dir.appendingPathComponent(name)), source: name))
        }
    }

    private var all: [Loaded] = []

    override func setUpWithError() throws {
        all = try Self.load()
    }

    /// Every case of one section, as (where, case); fails when no file has the section.
    private func cases<T>(_ section: String, _ get: (TestVectors) -> [T], name: (T) -> String) -> [(String, T)] {
        let found = all.flatMap { l in get(l.vectors).map { ("\(l.file) \(section) \(name($0))", $0) } }
        XCTAssertFalse(found.isEmpty, "no \(section) cases in \(Repo.vectors.path)")
        print("vectors \(section): \(found.count) cases")
        return found
    }

    func testFilesParse() throws {
        XCTAssertFalse(all.isEmpty)
        for l in all { XCTAssertEqual(l.vectors.format, TestVectors.format, l.file) }
    }

    func testDecode() throws {
        for (at, c) in cases("decode", { $0.decode }, name: { $0.name }) {
            let coder = try BoxCoder(c.boxCoder)
            let boxes = try BoxDecoder.decode(boxEncodings: c.boxEncodings.flatMap { $0.map { Float($0) } },
                                              anchors: c.anchors.flatMap { $0.map { Float($0) } }, coder: coder)
            assertClose(boxes.map { Double($0) }, c.expectedBoxes.flatMap { $0 }, c.tolerance, "\(at): boxes")
            let numClasses = c.classLogits.first?.count ?? 0
            let scores = try BoxDecoder.scores(classLogits: c.classLogits.flatMap { $0.map { Float($0) } },
                                               numClasses: numClasses, score: try ScoreFunction(name: c.score))
            assertClose(scores.map { Double($0) }, c.expectedScores.flatMap { $0 }, c.tolerance, "\(at): scores")
        }
    }

    func testNms() throws {
        for (at, c) in cases("nms", { $0.nms }, name: { $0.name }) {
            let cfg = NmsConfig(iouThresh: Float(c.config.iouThresh), scoreThresh: Float(c.config.scoreThresh),
                                topkCandidates: c.config.topkCandidates, maxPerClass: c.config.maxPerClass,
                                maxDetections: c.config.maxDetections)
            let got = try Nms.perClass(boxes: c.boxes.flatMap { $0.map { Float($0) } },
                                       scores: c.scores.flatMap { $0.map { Float($0) } },
                                       numClasses: c.scores.first?.count ?? 0, config: cfg)
            XCTAssertEqual(got.map { $0.label }, c.expected.map { $0.label }, "\(at): labels")
            for (i, (g, w)) in zip(got, c.expected).enumerated() {
                assertClose(g.box, w.box, c.tolerance, "\(at): detection \(i) box")
                assertClose([Double(g.score)], [w.score], c.tolerance, "\(at): detection \(i) score")
            }
        }
    }

    func testMatch() throws {
        for (at, c) in cases("match", { $0.match }, name: { $0.name }) {
            let got = DetectionMatch.matches(c.reference.map(Detection.init), c.candidate.map(Detection.init),
                                             maxDetections: c.maxDetections, boxTolPx: Float(c.boxTolPx),
                                             scoreTol: Float(c.scoreTol))
            XCTAssertEqual(got, c.expected, at)
        }
    }

    func testDrift() throws {
        let values: [String: Float] = ["nan": .nan, "inf": .infinity, "-inf": -.infinity]
        for (at, c) in cases("drift", { $0.drift }, name: { $0.name }) {
            let raw = c.images.contains { $0.floatOutputs != nil }
            var tally = DriftTally(raw: raw, rtol: c.rtol, atol: c.atol, minImagesMatched: c.minImagesMatched)
            for image in c.images {
                var device = image.deviceOutputs.map { $0.map { Float($0) } }
                for nf in image.nonFinite { device[nf.output][nf.index] = try XCTUnwrap(values[nf.value]) }
                let float = image.floatOutputs.map { $0.map { $0.map { Float($0) } } }
                try tally.add(device: device, float: float) { image.detectionsMatch }
            }
            let r = tally.result
            let want = c.expected
            XCTAssertEqual(r.images, c.images.count, at)
            XCTAssertEqual(r.nonFinite, want.nonFinite, "\(at): non_finite")
            XCTAssertEqual(r.detectionsMatched, want.detectionsMatched, "\(at): detections_matched")
            XCTAssertEqual(r.rawWithinTolerance, want.rawWithinTolerance, "\(at): raw_within_tolerance")
            XCTAssertEqual(r.passed, want.passed, "\(at): passed (\(r.summary))")
            if let w = want.maxAbsDiffRaw, let g = r.maxAbsDiffRaw {
                assertClose([g], [w], 1e-12 * max(1.0, w), "\(at): max_abs_diff_raw")
            } else {
                XCTAssertEqual(r.maxAbsDiffRaw, want.maxAbsDiffRaw, "\(at): max_abs_diff_raw")
            }
        }
    }

    func testPreview() throws {
        for (at, c) in cases("preview", { $0.preview }, name: { $0.name }) {
            let mode = try XCTUnwrap(ScaleMode(rawValue: c.mode), at)
            let r = PreviewMapping.toView(x1: Float(c.box[0]), y1: Float(c.box[1]), x2: Float(c.box[2]), y2: Float(c.box[3]),
                                          sourceWidth: Float(c.srcWidth), sourceHeight: Float(c.srcHeight),
                                          viewWidth: Float(c.viewWidth), viewHeight: Float(c.viewHeight),
                                          mode: mode, mirror: c.mirror)
            assertClose([r.left, r.top, r.right, r.bottom].map { Double($0) }, c.expected, c.tolerance, "\(at): rect")
        }
    }

    func testLatency() throws {
        for (at, c) in cases("latency", { $0.latency }, name: { $0.name }) {
            let s = try LatencyStats(c.timesMs)
            XCTAssertEqual(s.medianMs, c.expectedMedian, "\(at): median")
            XCTAssertEqual(s.p90Ms, c.expectedP90, "\(at): p90")
            XCTAssertEqual(s.runs, c.timesMs.count, at)
        }
    }
}

import Foundation
import SSDMobileKit
import XCTest

/// The parts of the Kit the app calls that the vectors and fixtures do not reach: Core ML's
/// pipeline outputs, NMS-in-graph rows, Vision's rectangles, the sidecar checks, the texts.
final class KitTests: XCTestCase {
    func testCoreMLPipelineOutputs() throws {
        // two rows of (cat, dog) scores, centre-size boxes; the second row scores higher
        let conf: [Float] = [0.6, 0.1, 0.2, 0.9]
        let coords: [Float] = [0.5, 0.5, 0.2, 0.4, 0.25, 0.25, 0.5, 0.5]
        let p = try Postprocessor.fromPipeline(confidence: conf, coordinates: coords, foregroundClasses: 2)
        XCTAssertEqual(p.nonFinite, 0)
        XCTAssertEqual(p.detections, [
            Detection(x1: 0, y1: 0, x2: 0.5, y2: 0.5, score: 0.9, label: 2),
            Detection(x1: 0.4, y1: 0.3, x2: 0.6, y2: 0.7, score: 0.6, label: 1),
        ])
        // the same through Postprocessor.run, chosen by the sidecar's output names
        XCTAssertEqual(try Postprocessor(sidecar: Sample.sidecar()).run([conf, coords]), p.detections)
        // non-finite values are counted, not used
        let bad = try Postprocessor.fromPipeline(confidence: [.nan, 0.5, 0.2, 0.9], coordinates: [.infinity] + coords.dropFirst(),
                                                 foregroundClasses: 2)
        XCTAssertEqual(bad.nonFinite, 2)
        XCTAssertEqual(bad.detections.map { $0.label }, [2])
        XCTAssertEqual(try Postprocessor.fromPipeline(confidence: [], coordinates: [], foregroundClasses: 2).detections, [])
        XCTAssertThrowsError(try Postprocessor.fromPipeline(confidence: [0.1, 0.2], coordinates: [0.5], foregroundClasses: 2))
    }

    func testGraphNmsRows() throws {
        var s = Sample.sidecar(nmsInGraph: false)
        s.nms.inGraph = true
        s.outputs = [OutputName.boxes, OutputName.scores, OutputName.labels].map {
            OutputSpec(name: $0, shape: [1, 3], dtype: "float32", meaning: "")
        }
        let boxes: [Float] = [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0, 0, 0, 0]
        let got = try Postprocessor(sidecar: s).run([boxes, [0.9, 0.5, 0], [1, 2, -1]])  // the last row is padding
        XCTAssertEqual(got.map { $0.label }, [1, 2])
        s.outputs.append(OutputSpec(name: OutputName.numDetections, shape: [1], dtype: "int64", meaning: ""))
        XCTAssertEqual(try Postprocessor(sidecar: s).run([boxes, [0.9, 0.5, 0], [1, 2, -1], [1]]).count, 1)
        XCTAssertThrowsError(try Postprocessor(sidecar: s).run([boxes])) { e in
            XCTAssertTrue(e.localizedDescription.contains("returned 1 outputs"), e.localizedDescription)
        }
    }

    func testRawOutputsDecodeAndNms() throws {
        let p = try Postprocessor(sidecar: Sample.sidecar(nmsInGraph: false))
        XCTAssertEqual(p.anchors, [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 0.5, 0.5])
        // zero encodings = the anchors; anchor 0 a confident cat, anchor 1 background
        let got = try p.run([[Float](repeating: 0, count: 8), [0, 5, 0, 5, 0, 0]])
        XCTAssertEqual(got.count, 1)
        XCTAssertEqual(got[0].label, 1)
        XCTAssertEqual(got[0].x2, 0.5, accuracy: 1e-6)
        XCTAssertThrowsError(try p.fromRaw(boxEncodings: [0, 0, 0, 0], classLogits: [0, 0, 0])) { e in
            XCTAssertTrue("\(e)".contains("do not belong together"), "\(e)")
        }
    }

    func testVisionRectanglesAndPreview() {
        // Vision: origin bottom-left; the Kit: top-left
        let d = Detection(bottomLeftX: 0.1, y: 0.2, width: 0.3, height: 0.4, score: 0.5, label: 1)
        XCTAssertEqual(d.x1, 0.1, accuracy: 1e-6)
        XCTAssertEqual(d.y1, 0.4, accuracy: 1e-6)
        XCTAssertEqual(d.x2, 0.4, accuracy: 1e-6)
        XCTAssertEqual(d.y2, 0.8, accuracy: 1e-6)
        let r = PreviewMapping.toView(d, sourceWidth: 100, sourceHeight: 200, viewWidth: 100, viewHeight: 100, mode: .fit,
                                      mirror: true)
        XCTAssertEqual(r.left, 100 - (0.4 * 50 + 25), accuracy: 1e-4)
        XCTAssertEqual(r.width, 0.3 * 50, accuracy: 1e-4)
        XCTAssertEqual(r.midY, 0.6 * 100, accuracy: 1e-4)
        // a view not laid out yet: an empty rectangle, not NaN
        XCTAssertEqual(PreviewMapping.toView(d, sourceWidth: 100, sourceHeight: 200, viewWidth: 0, viewHeight: 0, mode: .crop),
                       ViewRect(left: 0, top: 0, right: 0, bottom: 0))
    }

    func testSidecarChecksForTheApp() throws {
        XCTAssertNoThrow(try Sample.sidecar().checkRunsOnIOS(source: "a.json"))
        XCTAssertThrowsError(try Sample.sidecar(nmsInGraph: false).checkRunsOnIOS(source: "b.json")) { e in
            XCTAssertEqual(e.localizedDescription, "b.json is a executorch sidecar; this app runs Core ML (.mlpackage) artifacts")
        }
        var raw = Sample.sidecar(nmsInGraph: false)
        raw.target = "coreml"
        XCTAssertThrowsError(try raw.checkRunsOnIOS(source: "c.json")) { e in
            XCTAssertTrue(e.localizedDescription.contains("no NMS pipeline"), e.localizedDescription)
        }
        let s = Sample.sidecar()
        XCTAssertEqual(s.label(2), "dog")
        XCTAssertEqual(s.label(7), "class 7")
        XCTAssertEqual(s.labelID(named: "cat"), 1)
        XCTAssertThrowsError(try s.outputIndex("boxes")) { e in
            XCTAssertTrue("\(e)".contains("outputs: confidence, coordinates"), "\(e)")
        }
    }

    func testFloat32FilesAndRGBImages() throws {
        let v: [Float] = [1.5, -2, .infinity, 3.25e-7]
        let data = Float32LE.encode(v)
        XCTAssertEqual([UInt8](data.prefix(4)), [0, 0, 0xC0, 0x3F])  // 1.5, little-endian
        XCTAssertEqual(try Float32LE.decode(data), v)
        XCTAssertThrowsError(try Float32LE.decode(Data([1, 2, 3])))
        let img = try RGBImage(width: 2, height: 1, rgb: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(img.rgbx, [1, 2, 3, 255, 4, 5, 6, 255])
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, rgb: [1, 2, 3]))
        XCTAssertEqual(SyntheticFrame.rgbx(width: 640, height: 480).count, 640 * 480 * 4)
    }

    func testTexts() throws {
        let s = try LatencyStats([3, 1, 2, 10])
        XCTAssertEqual(s.summary("forward"), "forward: median 2.50 ms, p90 10.00 ms, min 1.00 ms over 4 runs")
        XCTAssertThrowsError(try LatencyStats([]))
        let fail = DriftResult(images: 4, maxAbsDiffRaw: 6.872613430023193, rawWithinTolerance: false, nonFinite: 2,
                               detectionsMatched: 1, minImagesMatched: 4, passed: false)
        XCTAssertEqual(fail.summary, "FAIL: max raw difference 6.87e+00 (OUT of tolerance), detections match on 1/4 images "
            + "(at least 4 needed), 2 NaN/infinite outputs")
        let r = try Sample.deviceResult()
        XCTAssertEqual(r.fileName, "result_tiny_coreml_fp32_nms_20250102T030405Z.json")
        var kotlinTime = r
        kotlinTime.time = "2025-01-02T03:04:05.678Z"  // java.time.Instant.toString() keeps milliseconds
        XCTAssertEqual(kotlinTime.fileName, r.fileName)
        let text = BenchmarkText.screen(result: r, forward: s, postprocess: s, endToEnd: s, savedAs: r.fileName)
        XCTAssertTrue(text.contains("drift vs float: PASS"), text)
        XCTAssertTrue(text.contains("Core ML prediction: median 2.50 ms"), text)
    }
}

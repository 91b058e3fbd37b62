import Foundation
import SSDMobileKit
import XCTest

/// The generated decoders as the app meets them: a real sidecar parses; a broken one is refused
/// with one line naming the file and the field; a device result survives its own round trip.
final class FormatTests: XCTestCase {
    /// A real sidecar (the first reference dir's) when the fixtures are there, else one made in code.
    private func baseSidecar() throws -> Data {
        if let dir = Repo.dirs("SSDMOBILE_REFERENCE_DIRS")?.first {
            return try Repo.data(dir.appendingPathComponent("sidecar.json"))
        }
        return try Sample.sidecar().jsonData()
    }

    /// The JSON with the value at `path` (object keys) replaced, or removed when `value` is nil.
    private func edited(_ data: Data, _ path: [String], _ value: JSONValue?) throws -> Data {
        func edit(_ node: JSONValue, _ path: ArraySlice<String>) throws -> JSONValue {
            guard case .object(var o) = node, let key = path.first else { throw KitError("no object at \(path)") }
            if path.count == 1 {
                o[key] = value
            } else {
                o[key] = try edit(try XCTUnwrap(o[key], "no \(key)"), path.dropFirst())
            }
            return .object(o)
        }
        return try JSONEncoder().encode(try edit(try JSONDecoder().decode(JSONValue.self, from: data), path[...]))
    }

    /// `parse` refuses `data` with a FormatError of one line that starts with the source and says all of `words`.
    private func assertRefused(_ data: Data, _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Sidecar.parse(data, source: "x.json"), file: file, line: line) { e in
            guard let f = e as? FormatError else { return XCTFail("not a FormatError: \(e)", file: file, line: line) }
            XCTAssertFalse(f.message.contains("\n"), "more than one line: \(f.message)", file: file, line: line)
            XCTAssertTrue(f.message.hasPrefix("x.json: "), f.message, file: file, line: line)
            for w in words { XCTAssertTrue(f.message.contains(w), "\(f.message) does not say \(w)", file: file, line: line) }
            XCTAssertEqual(e.localizedDescription, f.message, file: file, line: line)
            print("refused: \(f.message)")
        }
    }

    func testReferenceSidecarsParse() throws {
        guard let dirs = Repo.dirs("SSDMOBILE_REFERENCE_DIRS") else {
            throw XCTSkip("SSDMOBILE_REFERENCE_DIRS is not set (ios_demo/SSDMobileKit/test.sh sets it)")
        }
        for dir in dirs {
            let s = try Sidecar.parse(try Repo.data(dir.appendingPathComponent("sidecar.json")), source: dir.lastPathComponent)
            XCTAssertEqual(s.format, Sidecar.format)
            XCTAssertGreaterThan(s.numClasses, 1)
            XCTAssertEqual(s.flatAnchors.count, s.decode.anchors.count * 4)
            XCTAssertNoThrow(try Postprocessor(sidecar: s))
            // re-encoded and parsed again: the same sidecar
            XCTAssertEqual(try Sidecar.parse(try s.jsonData(), source: "again"), s)
        }
    }

    func testTheSampleSidecarParses() throws {
        let s = try Sidecar.parse(try Sample.sidecar().jsonData(), source: "sample")
        XCTAssertEqual(s, Sample.sidecar())
    }

    func testAMissingField() throws {
        assertRefused(try edited(try baseSidecar(), ["nms", "iou_thresh"], nil), ["nms.iou_thresh", "missing"])
        assertRefused(try edited(try baseSidecar(), ["class_names"], nil), ["class_names", "missing"])
    }

    func testAWrongType() throws {
        assertRefused(try edited(try baseSidecar(), ["nms", "max_detections"], .string("100")), ["nms.max_detections"])
        assertRefused(try edited(try baseSidecar(), ["nms", "in_graph"], .number(1)), ["nms.in_graph"])
    }

    func testABadLiteralValue() throws {
        assertRefused(try edited(try baseSidecar(), ["decode", "score"], .string("softplus")), ["decode.score", "softplus"])
        assertRefused(try edited(try baseSidecar(), ["input", "layout"], .string("CHW")), ["input.layout"])
    }

    func testAWrongListLength() throws {
        assertRefused(try edited(try baseSidecar(), ["input", "shape"], .array([.number(1), .number(3), .number(320)])),
                      ["input.shape", "expected 4 items, got 3"])
        assertRefused(try edited(try baseSidecar(), ["preprocess", "mean"], .array([.number(0.5)])), ["preprocess.mean"])
    }

    func testANewerVersion() throws {
        assertRefused(try edited(try baseSidecar(), ["schema_version"], .number(Double(Sidecar.version + 1))),
                      ["schema_version", "newer", "update the app"])
    }

    func testAnotherFilesFormat() throws {
        assertRefused(try Sample.deviceResult().jsonData(), ["format", Sidecar.format])
        assertRefused(try edited(try baseSidecar(), ["format"], .string("ssdmobile-artifact-golden")), ["format"])
        assertRefused(Data("[1, 2]".utf8), ["top level"])
        assertRefused(Data("{\"format\": ".utf8), ["invalid JSON"])
    }

    func testDeviceResultRoundTrip() throws {
        for r in [try Sample.deviceResult(), try Sample.deviceResult(drift: nil)] {
            let data = try r.jsonData()
            XCTAssertEqual(try DeviceResult.parse(data, source: r.fileName), r)
            // one line; nulls written, not left out (key order is JSONEncoder's: not fixed on Linux)
            let text = String(decoding: data, as: UTF8.self)
            XCTAssertFalse(text.contains("\n"))
            XCTAssertTrue(text.contains("\"format\":\"ssdmobile-device-result\""), text)
            if r.drift == nil { XCTAssertTrue(text.contains("\"drift\":null"), text) }
            XCTAssertEqual(try DeviceResult.parse(Data(try r.jsonLine().utf8), source: "line"), r)
        }
        // a result of another version or another kind of file is refused
        let newer = try edited(try Sample.deviceResult().jsonData(), ["version"], .number(2))
        XCTAssertThrowsError(try DeviceResult.parse(newer, source: "r.json")) { e in
            XCTAssertTrue("\(e)".contains("newer"), "\(e)")
        }
        XCTAssertThrowsError(try DeviceResult.parse(try Sample.sidecar().jsonData(), source: "r.json"))
    }
}

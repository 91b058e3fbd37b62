import Foundation
import SSDMobileKit
import XCTest

/// The drift check on real programs: tests/drift_fixtures.py (run by tests/phone_fixtures.sh) exports
/// ExecuTorch programs with golden data (`ssdmobile export --golden`), runs them with ExecuTorch's
/// Python runtime on the golden inputs and saves the outputs as the app holds them (env
/// SSDMOBILE_DRIFT_DIR: cases.json and the files it names). The check must pass on the true
/// programs and fail on the perturbed ones, and find exactly what the Python check found. Then one
/// device result is written with the Kit's writer (env SSDMOBILE_RESULTS_OUT) for
/// `ssdmobile device-report` to read (tests/test_ios_kit.py).
final class DriftTests: XCTestCase {
    /// cases.json of tests/drift_fixtures.py.
    struct Listing: Decodable {
        struct Entry: Decodable {
            let name: String
            let sidecar: String
            let golden: String
            let outputs: String
            let expectPass: Bool
            let python: DriftResult

            enum CodingKeys: String, CodingKey {
                case name, sidecar, golden, outputs, python
                case expectPass = "expect_pass"
            }
        }

        let cases: [Entry]
    }

    /// outputs.json of ssdmobile.drift.save_outputs: per image, its output files (flat float32).
    struct Outputs: Decodable {
        struct Image: Decodable {
            let image: String
            let outputs: [String]
        }

        let artifact: String
        let images: [Image]
    }

    struct Case {
        let name: String
        let check: DriftCheck
        let outputs: [[[Float]]]
        let expectPass: Bool
        let python: DriftResult
        let goldenFolder: URL
    }

    private func cases() throws -> [Case] {
        guard let dir = Repo.dirs("SSDMOBILE_DRIFT_DIR")?.first else {
            throw XCTSkip("SSDMOBILE_DRIFT_DIR is not set: run ios_demo/SSDMobileKit/test.sh, which writes the drift "
                + "fixtures with tests/phone_fixtures.sh (tests/drift_fixtures.py) and sets it")
        }
        let listing = try JSONDecoder().decode(Listing.self, from: try Repo.data(dir.appendingPathComponent("cases.json")))
        return try listing.cases.map { c in
            let goldenURL = URL(fileURLWithPath: c.golden)
            let folder = goldenURL.deletingLastPathComponent()
            let sidecarURL = URL(fileURLWithPath: c.sidecar)
            let golden = try ArtifactGolden.parse(try Repo.data(goldenURL), source: goldenURL.path)
            let sidecar = try Sidecar.parse(try Repo.data(sidecarURL), source: sidecarURL.path)
            let check = try DriftCheck(golden: golden, sidecar: sidecar) { name in
                try Repo.data(folder.appendingPathComponent(name))
            }
            let outURL = URL(fileURLWithPath: c.outputs)
            let listed = try JSONDecoder().decode(Outputs.self, from: try Repo.data(outURL))
            let outputs = try listed.images.map { image in
                try image.outputs.map { name in
                    try Float32LE.decode(try Repo.data(outURL.deletingLastPathComponent().appendingPathComponent(name)),
                                        source: name)
                }
            }
            return Case(name: c.name, check: check, outputs: outputs, expectPass: c.expectPass, python: c.python,
                        goldenFolder: folder)
        }
    }

    func testPassesOnTheTrueProgramsAndFailsOnThePerturbedOnes() throws {
        let all = try cases()
        XCTAssertTrue(all.contains { $0.expectPass } && all.contains { !$0.expectPass }, "expected true and perturbed cases")
        for c in all {
            let r = try c.check.check(outputs: c.outputs)
            print("drift \(c.name): \(r.summary)")
            XCTAssertEqual(r.passed, c.expectPass, "\(c.name): \(r.summary)")
            // the same numbers as the Python check on the same outputs
            let py = c.python
            XCTAssertEqual(r.images, py.images, "\(c.name): images")
            XCTAssertEqual(r.detectionsMatched, py.detectionsMatched, "\(c.name): matched images")
            XCTAssertEqual(r.nonFinite, py.nonFinite, "\(c.name): non-finite")
            XCTAssertEqual(r.minImagesMatched, py.minImagesMatched, "\(c.name): min matched")
            XCTAssertEqual(r.maxAbsDiffRaw, py.maxAbsDiffRaw, "\(c.name): max raw diff")
            XCTAssertEqual(r.rawWithinTolerance, py.rawWithinTolerance, "\(c.name): raw within tolerance")
            XCTAssertEqual(r, py, c.name)
        }
    }

    func testNanOrInfinityFailsTheCheck() throws {
        let all = try cases()
        let c = try XCTUnwrap(all.first { $0.expectPass && !$0.check.golden.nmsInGraph })
        var broken = c.outputs
        broken[0][0][5] = .nan
        let r = try c.check.check(outputs: broken)
        XCTAssertFalse(r.passed)
        XCTAssertEqual(r.nonFinite, 1)
        XCTAssertEqual(r.rawWithinTolerance, false)
        XCTAssertEqual(r.detectionsMatched, c.python.detectionsMatched - 1)
        XCTAssertTrue(r.summary.contains("NaN"), r.summary)
    }

    func testGoldenInputsAreTheTensorsThePythonRuntimeRan() throws {
        let all = try cases()
        let c = try XCTUnwrap(all.first { $0.name == "person_fp32" })
        let x = try c.check.input(0)
        XCTAssertEqual(x.count, c.check.golden.input.shape.reduce(1, *))
        XCTAssertFalse(x.contains { $0.isNaN })
        XCTAssertThrowsError(try c.check.inputImage(0))  // a tensor input, not a Core ML image
        XCTAssertEqual(c.check.golden.artifact, c.check.sidecar.artifact)
        // the folder form the app uses reads the same manifest
        XCTAssertEqual(try DriftCheck(folder: c.goldenFolder, sidecar: c.check.sidecar).golden, c.check.golden)
    }

    func testAGoldenFolderOfAnotherArtifactIsRefused() throws {
        let all = try cases()
        let person = try XCTUnwrap(all.first { $0.name == "person_fp32" })
        let tiny = try XCTUnwrap(all.first { $0.name == "tiny_nms" })
        XCTAssertThrowsError(try DriftCheck(golden: person.check.golden, sidecar: tiny.check.sidecar) { _ in Data() }) { e in
            XCTAssertTrue("\(e)".contains("golden data is for"), "\(e)")
        }
        XCTAssertThrowsError(try person.check.check(outputs: [])) { e in
            XCTAssertTrue("\(e)".contains("output sets"), "\(e)")
        }
    }

    /// The device result of the true person program's check, as the app writes it, for
    /// tests/test_ios_kit.py to feed to `ssdmobile device-report`.
    func testWritesADeviceResult() throws {
        let all = try cases()
        let c = try XCTUnwrap(all.first { $0.name == "person_fp32" })
        let drift = try c.check.check(outputs: c.outputs)
        XCTAssertTrue(drift.passed, drift.summary)
        let g = c.check.golden
        let result = DeviceResult.benchmark(
            artifact: g.artifact, artifactSha256: g.artifactSha256, model: g.model, precision: g.precision,
            nmsInGraph: g.nmsInGraph, device: DeviceInfo(name: "iPhone15,2", soc: "A16 Bionic", os: "iOS 17.5"),
            runtime: RuntimeInfo(name: "Core ML", version: "iOS 17.5", threads: 0, backend: "compute units: all"),
            warmup: 5, forward: try LatencyStats([9.5, 10.0, 10.5, 11.0, 12.0]),
            postprocess: try LatencyStats([0.25, 0.5, 0.5, 0.75, 1.0]),
            endToEnd: try LatencyStats([15.0, 16.0, 16.5, 17.0, 20.0]),
            drift: drift, finished: Date(timeIntervalSince1970: 1_735_787_045))  // 2025-01-02T03:04:05Z
        XCTAssertEqual(result.app, "ios")
        XCTAssertEqual(result.time, "2025-01-02T03:04:05Z")
        XCTAssertEqual(result.fileName, "result_ssdlite_mobilenet_v2_person_executorch_fp32_20250102T030405Z.json")
        XCTAssertEqual(result.latencyMs.forward, LatencyStat(median: 10.5, p90: 12.0))
        XCTAssertEqual(result.runs, 5)
        guard let out = Repo.dirs("SSDMOBILE_RESULTS_OUT")?.first else {
            throw XCTSkip("SSDMOBILE_RESULTS_OUT is not set: the device result was built but not written")
        }
        let url = try result.write(into: out)
        XCTAssertEqual(try DeviceResult.parse(try Repo.data(url), source: url.lastPathComponent), result)
        print("device result: wrote \(url.path)")
    }
}

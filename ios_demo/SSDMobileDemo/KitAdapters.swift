import CoreGraphics
import CoreML
import Foundation
import SSDMobileKit
import Vision

// The thin bridges between Apple's types and SSDMobileKit's plain ones; the logic is in the Kit
// (ios_demo/SSDMobileKit, compiled and tested on Linux with `swift test`).

extension CGRect {
    /// A Kit rectangle (left, top, right, bottom; origin top-left) as SwiftUI draws it.
    init(_ r: ViewRect) {
        self.init(x: CGFloat(r.left), y: CGFloat(r.top), width: CGFloat(r.width), height: CGFloat(r.height))
    }
}

extension CGImage {
    /// width x height pixels, 4 bytes each (R, G, B, ignored): the Kit's RGBImage.rgbx, SyntheticFrame.rgbx.
    static func rgbx(_ bytes: [UInt8], width: Int, height: Int) throws -> CGImage {
        guard bytes.count == width * height * 4 else {
            throw KitError("\(bytes.count) bytes for a \(width)x\(height) RGBX image")
        }
        var pixels = bytes
        let image: CGImage? = pixels.withUnsafeMutableBytes { raw in
            CGContext(data: raw.baseAddress, width: width, height: height, bitsPerComponent: 8, bytesPerRow: width * 4,
                      space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)?
                .makeImage()  // copies the pixels
        }
        guard let image else { throw KitError("could not make a \(width)x\(height) image") }
        return image
    }

    /// A golden input of a Core ML artifact (DriftCheck.inputImage).
    static func rgb(_ image: RGBImage) throws -> CGImage {
        try rgbx(image.rgbx, width: image.width, height: image.height)
    }
}

extension MLMultiArray {
    /// Every value as Float, in row-major order of the array's shape (whatever its strides).
    var floats: [Float] {
        let shape = self.shape.map { $0.intValue }
        let total = shape.reduce(1, *)
        guard total > 0 else { return [] }
        var out = [Float](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: shape.count)
        for i in 0..<total {
            out[i] = self[index.map { NSNumber(value: $0) }].floatValue
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}

extension MLFeatureProvider {
    /// The model's outputs named in the sidecar, flat, in the sidecar's order: what the Kit's
    /// Postprocessor and DriftCheck take.
    func outputs(of sidecar: Sidecar) throws -> [[Float]] {
        try sidecar.outputs.map { spec in
            guard let array = featureValue(for: spec.name)?.multiArrayValue else {
                throw KitError("\(sidecar.artifact): the model has no output \(spec.name)")
            }
            return array.floats
        }
    }
}

/// What the overlay draws of one detection: the Kit's detection (normalized, origin top-left) and
/// the label Vision gave it.
struct ShownDetection: Identifiable {
    let id = UUID()
    let detection: Detection
    let name: String
}

extension ShownDetection {
    /// Vision's observation of the NMS pipeline: boundingBox normalized with its origin bottom-left,
    /// labels by name (class_names[1:]).
    init(_ o: VNRecognizedObjectObservation, sidecar: Sidecar) {
        let name = o.labels.first?.identifier ?? "?"
        let b = o.boundingBox
        detection = Detection(bottomLeftX: Double(b.origin.x), y: Double(b.origin.y), width: Double(b.size.width),
                              height: Double(b.size.height), score: o.labels.first?.confidence ?? o.confidence,
                              label: sidecar.labelID(named: name) ?? -1)
        self.name = name
    }
}

import Foundation

/// One detection: normalized (x1, y1, x2, y2) in the source image, origin top-left, its score and
/// its label id (index into the sidecar's class_names; 0, the background, never appears).
public struct Detection: Equatable, Sendable, CustomStringConvertible {
    public var x1: Float
    public var y1: Float
    public var x2: Float
    public var y2: Float
    public var score: Float
    public var label: Int

    public init(x1: Float, y1: Float, x2: Float, y2: Float, score: Float, label: Int) {
        self.x1 = x1
        self.y1 = y1
        self.x2 = x2
        self.y2 = y2
        self.score = score
        self.label = label
    }

    /// A normalized rectangle with its origin at the bottom-left corner (Vision's boundingBox) ->
    /// the top-left-origin (x1, y1, x2, y2) every other part of the Kit uses.
    public init(bottomLeftX x: Double, y: Double, width: Double, height: Double, score: Float, label: Int) {
        self.init(x1: Float(x), y1: Float(1 - (y + height)), x2: Float(x + width), y2: Float(1 - y),
                  score: score, label: label)
    }

    /// The same detection with its box scaled (normalized -> pixels: the image's width and height).
    public func scaled(x sx: Float, y sy: Float) -> Detection {
        Detection(x1: x1 * sx, y1: y1 * sy, x2: x2 * sx, y2: y2 * sy, score: score, label: label)
    }

    public var description: String { "Detection(\(x1), \(y1), \(x2), \(y2), score \(score), label \(label))" }
}

/// What the Kit refuses: outputs that do not fit their sidecar, golden data of another artifact,
/// an artifact the app cannot run. One line, for the screen and the log.
public struct KitError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Flat float32 little-endian files: what `ssdmobile golden` and `ssdmobile export --golden` write
/// for tensors (numpy's `<f4` tofile), and what the app reads them as.
public enum Float32LE {
    public static func decode(_ data: Data, source: String = "float32 file") throws -> [Float] {
        guard data.count % 4 == 0 else {
            throw KitError("\(source): \(data.count) bytes, not a whole number of float32 values")
        }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
    }

    public static func encode(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }
}

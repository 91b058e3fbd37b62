import CoreGraphics
import Vision

/// How the upright source image is shown in a view; the same three modes as the Kotlin
/// PreviewMapping (android_demo/postprocess), which is unit-tested:
///  fill: stretched on both axes; fit: uniform, letterboxed (.scaledToFit, .resizeAspect);
///  crop: uniform, covering the view, overflow cropped (.scaledToFill, .resizeAspectFill).
enum ScaleMode { case fill, fit, crop }

enum PreviewMapping {
    /// Vision's boundingBox (normalized, origin bottom-left) -> view rectangle (origin top-left).
    static func toView(_ box: CGRect, source: CGSize, view: CGSize, mode: ScaleMode, mirror: Bool = false) -> CGRect {
        let sx: CGFloat, sy: CGFloat
        switch mode {
        case .fill: sx = view.width / source.width; sy = view.height / source.height
        case .fit: sx = min(view.width / source.width, view.height / source.height); sy = sx
        case .crop: sx = max(view.width / source.width, view.height / source.height); sy = sx
        }
        let offX = (view.width - source.width * sx) / 2
        let offY = (view.height - source.height * sy) / 2
        // flip y: Vision's origin is the bottom-left corner
        var x1 = box.minX * source.width * sx + offX
        var x2 = box.maxX * source.width * sx + offX
        let y1 = (1 - box.maxY) * source.height * sy + offY
        let y2 = (1 - box.minY) * source.height * sy + offY
        if mirror { (x1, x2) = (view.width - x2, view.width - x1) }
        return CGRect(x: x1, y: y1, width: x2 - x1, height: y2 - y1)
    }
}

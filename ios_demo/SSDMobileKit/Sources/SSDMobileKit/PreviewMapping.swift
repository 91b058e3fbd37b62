import Foundation

/// A rectangle in view points or pixels, origin top-left (the app makes a CGRect of it).
public struct ViewRect: Equatable, Sendable {
    public var left: Float
    public var top: Float
    public var right: Float
    public var bottom: Float

    public init(left: Float, top: Float, right: Float, bottom: Float) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    public var width: Float { right - left }
    public var height: Float { bottom - top }
    public var midX: Float { (left + right) / 2 }
    public var midY: Float { (top + bottom) / 2 }
}

/// How the upright source image (camera frame or photo) is shown in a view; the model sees the
/// whole image (resized without keeping aspect), so its normalized boxes refer to the whole image:
///  fill: stretched to the view on both axes;
///  fit: scaled uniformly to fit inside, centered, letterboxed (SwiftUI .scaledToFit, .resizeAspect);
///  crop: scaled uniformly to cover the view, centered, the overflow cropped (.scaledToFill,
///        .resizeAspectFill, the camera preview).
public enum ScaleMode: String, Sendable, CaseIterable {
    case fill
    case fit
    case crop
}

/// Normalized boxes -> view rectangles, as the Kotlin PreviewMapping and
/// ssdmobile.visualize.preview_box compute them (float32, line for line).
public enum PreviewMapping {
    /// A normalized (x1, y1, x2, y2) box of a sourceWidth x sourceHeight image -> its rectangle in a
    /// viewWidth x viewHeight view showing the image with `mode`; mirror flips horizontally (a front
    /// camera's preview). Nothing is clipped to the view. Sizes must be positive; otherwise the
    /// rectangle is empty (a view not laid out yet).
    public static func toView(x1: Float, y1: Float, x2: Float, y2: Float, sourceWidth sw: Float, sourceHeight sh: Float,
                              viewWidth vw: Float, viewHeight vh: Float, mode: ScaleMode, mirror: Bool = false) -> ViewRect {
        guard sw > 0, sh > 0, vw > 0, vh > 0 else { return ViewRect(left: 0, top: 0, right: 0, bottom: 0) }
        let sx: Float
        let sy: Float
        switch mode {
        case .fill:
            sx = vw / sw
            sy = vh / sh
        case .fit:
            sx = Swift.min(vw / sw, vh / sh)
            sy = sx
        case .crop:
            sx = Swift.max(vw / sw, vh / sh)
            sy = sx
        }
        let offX = (vw - sw * sx) / 2
        let offY = (vh - sh * sy) / 2
        var left = x1 * sw * sx + offX
        var right = x2 * sw * sx + offX
        if mirror {
            (left, right) = (vw - right, vw - left)
        }
        return ViewRect(left: left, top: y1 * sh * sy + offY, right: right, bottom: y2 * sh * sy + offY)
    }

    public static func toView(_ d: Detection, sourceWidth: Float, sourceHeight: Float, viewWidth: Float,
                              viewHeight: Float, mode: ScaleMode, mirror: Bool = false) -> ViewRect {
        toView(x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2, sourceWidth: sourceWidth, sourceHeight: sourceHeight,
               viewWidth: viewWidth, viewHeight: viewHeight, mode: mode, mirror: mirror)
    }

    /// Normalized box -> source image pixels, as the detector reports boxes (x * W, y * H).
    public static func toImagePixels(_ d: Detection, width: Float, height: Float) -> ViewRect {
        ViewRect(left: d.x1 * width, top: d.y1 * height, right: d.x2 * width, bottom: d.y2 * height)
    }
}

import PhotosUI
import SSDMobileKit
import SwiftUI
import Vision

/// Pick a photo, run Vision once, draw the detections over the image (.scaledToFit = ScaleMode.fit).
struct PhotoScreen: View {
    let model: LoadedModel
    @State private var item: PhotosPickerItem?
    @State private var image: UIImage?
    @State private var detections: [ShownDetection] = []
    @State private var status = "pick a photo"
    @State private var minScore: Float = 0.5

    var body: some View {
        VStack {
            PhotosPicker("Pick a photo", selection: $item, matching: .images)
            ZStack {
                if let image {
                    Image(uiImage: image).resizable().scaledToFit()
                    DetectionOverlay(detections: detections, source: image.size, mode: .fit, minScore: minScore)
                }
            }
            .frame(maxWidth: .infinity, maxHeight: .infinity)
            MinScoreSlider(value: $minScore)
            Text(status).font(.caption.monospaced())
        }
        .padding()
        .task(id: item) {
            guard let item, let data = try? await item.loadTransferable(type: Data.self),
                  let ui = UIImage(data: data), let cg = ui.cgImage else { return }
            let t0 = CFAbsoluteTimeGetCurrent()
            do {
                // the orientation makes Vision see the upright photo, as ssdmobile's load_image does
                let found = try model.detect(cg, orientation: CGImagePropertyOrientation(ui.imageOrientation))
                let ms = (CFAbsoluteTimeGetCurrent() - t0) * 1000
                image = ui
                detections = model.shown(found)
                status = String(format: "%.0fx%.0f: %d detections | %.1f ms", ui.size.width, ui.size.height,
                                found.count, ms)
            } catch {
                status = "failed: \(error.localizedDescription)"
            }
        }
    }
}

extension CGImagePropertyOrientation {
    init(_ o: UIImage.Orientation) {
        switch o {
        case .up: self = .up
        case .down: self = .down
        case .left: self = .left
        case .right: self = .right
        case .upMirrored: self = .upMirrored
        case .downMirrored: self = .downMirrored
        case .leftMirrored: self = .leftMirrored
        case .rightMirrored: self = .rightMirrored
        @unknown default: self = .up
        }
    }
}

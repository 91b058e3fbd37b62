import AVFoundation
import SSDMobileKit
import SwiftUI
import Vision

/// Live camera with detections drawn over it. The preview layer uses .resizeAspectFill, which is
/// ScaleMode.crop in the Kit's preview mapping; frames are analysed upright (portrait) by Vision.
struct CameraScreen: View {
    let model: LoadedModel
    @StateObject private var camera = CameraController()
    @State private var minScore: Float = 0.5

    var body: some View {
        ZStack(alignment: .bottom) {
            CameraPreview(session: camera.session)
            DetectionOverlay(detections: camera.detections, source: camera.frameSize, mode: .crop,
                             minScore: minScore)
            VStack(alignment: .leading) {
                Text(camera.status).font(.caption.monospaced()).foregroundStyle(.white)
                MinScoreSlider(value: $minScore).tint(.white).foregroundStyle(.white)
            }
            .padding(8).background(.black.opacity(0.6))
        }
        .ignoresSafeArea(edges: .top)
        .onAppear { camera.start(model: model) }
        .onDisappear { camera.stop() }
    }
}

final class CameraController: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    @Published var detections: [ShownDetection] = []
    @Published var frameSize = CGSize(width: 3, height: 4)
    @Published var status = "starting camera"
    private let queue = DispatchQueue(label: "camera.frames")
    private var model: LoadedModel?
    private var configured = false

    func start(model: LoadedModel) {
        self.model = model
        AVCaptureDevice.requestAccess(for: .video) { granted in
            guard granted else {
                DispatchQueue.main.async { self.status = "camera permission denied (Settings > SSDMobile Demo)" }
                return
            }
            self.queue.async {
                if !self.configured { self.configure() }
                self.session.startRunning()
            }
        }
    }

    func stop() { queue.async { self.session.stopRunning() } }

    private func configure() {
        session.beginConfiguration()
        session.sessionPreset = .vga640x480
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
              let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
            DispatchQueue.main.async { self.status = "no back camera" }
            session.commitConfiguration()
            return
        }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.alwaysDiscardsLateVideoFrames = true
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.setSampleBufferDelegate(self, queue: queue)
        if session.canAddOutput(output) { session.addOutput(output) }
        session.commitConfiguration()
        configured = true
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let model, let buffer = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        // sensor frames are landscape; .right makes them upright for a portrait UI
        let upright = CGSize(width: CVPixelBufferGetHeight(buffer), height: CVPixelBufferGetWidth(buffer))
        let t0 = CFAbsoluteTimeGetCurrent()
        do {
            let found = try model.detect(buffer, orientation: .right)
            let ms = (CFAbsoluteTimeGetCurrent() - t0) * 1000
            let boxes = model.shown(found)
            DispatchQueue.main.async {
                self.frameSize = upright
                self.detections = boxes
                self.status = String(format: "%d detections | Vision + Core ML %.1f ms", boxes.count, ms)
            }
        } catch {
            DispatchQueue.main.async { self.status = "inference failed: \(error.localizedDescription)" }
        }
    }
}

struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewUIView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewUIView {
        let v = PreviewUIView()
        v.previewLayer.session = session
        v.previewLayer.videoGravity = .resizeAspectFill
        return v
    }

    func updateUIView(_ uiView: PreviewUIView, context: Context) {}
}

import SSDMobileKit
import SwiftUI

@main
struct SSDMobileDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}

/// Pick a bundled model; Camera, Photo and Benchmark tabs run it.
struct ContentView: View {
    @State private var models = ModelStore.list()
    @State private var selected: BundledModel?
    @State private var loaded: LoadedModel?
    @State private var error: String?

    var body: some View {
        NavigationStack {
            Group {
                if models.isEmpty {
                    Text("""
                    No model in the app.

                    On your computer:
                      ssdmobile export --target coreml --nms --model NAME --out out/
                      ssdmobile bundle --app ios --artifact out/NAME_coreml_fp16_nms.mlpackage
                    then build the app again.
                    """).font(.system(.footnote, design: .monospaced)).padding()
                } else if let loaded {
                    TabView {
                        CameraScreen(model: loaded).tabItem { Label("Camera", systemImage: "camera") }
                        PhotoScreen(model: loaded).tabItem { Label("Photo", systemImage: "photo") }
                        BenchmarkScreen(model: loaded).tabItem { Label("Benchmark", systemImage: "speedometer") }
                    }
                } else if let error {
                    Text(error).foregroundStyle(.red).padding()
                } else {
                    ProgressView("Loading model")
                }
            }
            .toolbar {
                if !models.isEmpty {
                    Picker("Model", selection: $selected) {
                        ForEach(models) { Text($0.name).tag(Optional($0)) }
                    }
                }
            }
            .navigationTitle(loaded.map { "\($0.sidecar.model) \($0.sidecar.precision)" } ?? "SSDMobile")
            .navigationBarTitleDisplayMode(.inline)
        }
        .onAppear { if selected == nil { selected = models.first } }
        .task(id: selected) {
            guard let selected else { return }
            loaded = nil
            error = nil
            do { loaded = try await ModelStore.load(selected) } catch { self.error = error.localizedDescription }
        }
    }
}

/// Boxes and labels over an image shown with `mode` (mapped by the Kit's PreviewMapping).
struct DetectionOverlay: View {
    let detections: [ShownDetection]
    let source: CGSize
    let mode: ScaleMode
    let minScore: Float

    var body: some View {
        GeometryReader { geo in
            ForEach(detections.filter { $0.detection.score >= minScore }) { o in
                let r = CGRect(PreviewMapping.toView(o.detection, sourceWidth: Float(source.width),
                                                     sourceHeight: Float(source.height), viewWidth: Float(geo.size.width),
                                                     viewHeight: Float(geo.size.height), mode: mode))
                ZStack(alignment: .topLeading) {
                    Rectangle().stroke(Color.green, lineWidth: 2)
                    Text("\(o.name) \(String(format: "%.2f", o.detection.score))")
                        .font(.caption2).padding(2).background(Color.green).foregroundStyle(.white)
                }
                .frame(width: r.width, height: r.height)
                .position(x: r.midX, y: r.midY)
            }
        }
        .allowsHitTesting(false)
    }
}

/// A display filter, not a model setting: the pipeline's NMS already used the sidecar's thresholds.
struct MinScoreSlider: View {
    @Binding var value: Float
    var body: some View {
        HStack {
            Text(String(format: "score ≥ %.2f", value)).font(.caption.monospacedDigit())
            Slider(value: $value, in: 0...1)
        }
    }
}

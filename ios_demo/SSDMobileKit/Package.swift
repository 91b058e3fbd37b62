// swift-tools-version:5.9
// SSDMobileKit: everything of the iOS demo app that needs no Apple framework (the formats, generated
// from ssdmobile's pydantic models; decode, NMS, the drift check, latency statistics, preview
// mapping, the device result). Foundation only: `swift build` and `swift test` run on Linux CI;
// the Xcode app target (ios_demo/SSDMobileDemo.xcodeproj) depends on it as a local package.
import PackageDescription

let package = Package(
    name: "SSDMobileKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "SSDMobileKit", targets: ["SSDMobileKit"]),
    ],
    targets: [
        .target(name: "SSDMobileKit"),
        .testTarget(name: "SSDMobileKitTests", dependencies: ["SSDMobileKit"]),
    ]
)

// swift-tools-version:5.9
// The demo's pure logic (no UIKit, no MediaPipe): `swift test` runs its tests against ../../tests/vectors.
import PackageDescription

let package = Package(
    name: "PortraitCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "PortraitCore", targets: ["PortraitCore"])],
    targets: [
        .target(name: "PortraitCore"),
        .testTarget(name: "PortraitCoreTests", dependencies: ["PortraitCore"]),
    ]
)

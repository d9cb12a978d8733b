// swift-tools-version:6.1
// libFuzzer targets for Switchboard's input parsers (see docs/fuzzing.md and scripts/fuzz.sh).
//
// Each target compiles the parser's own source files (symbolic links into ../Sources), not the
// whole Switchboard module, so that only they and SwiftNIO are built with `-sanitize=fuzzer`.
// Linux only: `swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld` (as scripts/fuzz.sh does),
// then run e.g. `.build/release/FuzzFrames -max_total_time=60 CORPUS_DIR Seeds/FuzzFrames`.
import PackageDescription

// Each target's main.swift hands libFuzzer's driver (`LLVMFuzzerRunDriver`, declared in
// CFuzzDriver) its `LLVMFuzzerTestOneInput`: SwiftPM names an executable's entry point itself, so
// libFuzzer's own `main` cannot be used.

let package = Package(
    name: "SwitchboardFuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "FuzzFrames",
            dependencies: ["CFuzzDriver", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio")]
        ),
        .executableTarget(
            name: "FuzzHandshake",
            dependencies: ["CFuzzDriver", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .executableTarget(
            name: "FuzzEnvelope",
            dependencies: ["CFuzzDriver", .product(name: "NIOCore", package: "swift-nio")]
        ),
    ]
)

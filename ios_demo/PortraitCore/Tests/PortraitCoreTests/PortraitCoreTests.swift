import Foundation
import XCTest
@testable import PortraitCore

/// The Swift logic against the shared vectors (tests/vectors/mobile_logic.json) and the released files, as the
/// Kotlin unit tests do.
final class PortraitCoreTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../..").standardized

    private func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: repository.appendingPathComponent(path))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func floats(_ value: Any?) -> [Float] { (value as? [NSNumber] ?? []).map(\.floatValue) }

    private func pixels(_ value: Any?) -> [RGB] {
        let v = (value as? [NSNumber] ?? []).map(\.intValue)
        return stride(from: 0, to: v.count, by: 3).map { RGB(v[$0], v[$0 + 1], v[$0 + 2]) }
    }

    func testLetterboxBoxesMatchTheRuntime() throws {
        for case let c as [String: Any] in try json("tests/vectors/mobile_logic.json")["letterbox"] as? [Any] ?? [] {
            let f = c["frame_hw"] as! [Int], m = c["model_hw"] as! [Int], b = c["box"] as! [Int]
            XCTAssertEqual(letterboxBox(frameHeight: f[0], frameWidth: f[1], modelHeight: m[0], modelWidth: m[1]),
                           Box(top: b[0], left: b[1], height: b[2], width: b[3]))
        }
    }

    func testMasksMapBackAndSmoothAsTheRuntime() throws {
        let vectors = try json("tests/vectors/mobile_logic.json")
        for case let c as [String: Any] in vectors["postprocess"] as? [Any] ?? [] {
            let f = c["frame_hw"] as! [Int], m = c["model_hw"] as! [Int]
            let frame = PixelSize(width: f[1], height: f[0]), model = PixelSize(width: m[1], height: m[0])
            let box = placement(ResizeMode(rawValue: c["resize"] as! String)!, frame: frame, model: model)
            let mask = toFrame(FloatMap(width: m[1], height: m[0], values: floats(c["prob"])), box: box, frame: frame)
            for (a, b) in zip(mask.values, floats(c["mask"])) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        }
        let s = vectors["smoothing"] as! [String: Any]
        let out = uncertaintyBlend(floats(s["p"]), floats(s["prev"]))
        for (a, b) in zip(out, floats((s["uncertainty"] as! [String: Any])["out"])) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testPixelEffectsMatchTheRuntime() throws {
        let p = try json("tests/vectors/mobile_logic.json")["pixels"] as! [String: Any]
        let frame = pixels(p["frame"])
        let alpha = FloatMap(width: p["width"] as! Int, height: p["height"] as! Int, values: floats(p["alpha"]))
        XCTAssertEqual(composite(frame, pixels(p["background"]), alpha: alpha), pixels(p["composite"]))
        XCTAssertEqual(matte(alpha), pixels(p["matte"]))
        XCTAssertEqual(gradientBackground(width: alpha.width, height: alpha.height), pixels(p["gradient"]))
        let hair = p["hair_color"] as! [String: Any], nails = p["nails"] as! [String: Any]
        let hairColor = pixels(hair["color"])[0], nailColor = pixels(nails["color"])[0]
        XCTAssertEqual(recolorHair(frame, alpha: alpha, color: hairColor, strength: 0.8), pixels(hair["out"]))
        XCTAssertEqual(paintNails(frame, alpha: alpha, color: nailColor), pixels(nails["out"]))
    }

    func testCardFieldsAndReleasedFiles() throws {
        XCTAssertEqual(cardFields, try json("tests/vectors/mobile_contract.json")["card_fields"] as? [String])
        let export = repository.appendingPathComponent("export")
        let files = try FileManager.default.contentsOfDirectory(atPath: export.path).filter { $0.hasSuffix(".tflite") }
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let bytes = try Data(contentsOf: export.appendingPathComponent(file))
            let beside = try Data(contentsOf: export.appendingPathComponent(file.replacingOccurrences(of: ".tflite", with: ".json")))
            let model = try TfliteModel(bytes)
            XCTAssertEqual(try parseCard(beside), try parseCard(try XCTUnwrap(model.embeddedCard)), file)
            switch judge(file: file, bytes: bytes, cardBeside: nil) {
            case let .runs(_, card, runner, _):
                XCTAssertEqual(runner, card.inputChannels == 4 ? .interpreter : .imageSegmenter, file)
            case let .refused(_, reason):
                XCTAssertTrue(reason.contains("\(model.outputs.count) outputs"), "\(file): \(reason)")
            }
        }
        if case .runs = judge(file: "junk.tflite", bytes: Data(count: 64), cardBeside: nil) { XCTFail("junk ran") }
    }
}

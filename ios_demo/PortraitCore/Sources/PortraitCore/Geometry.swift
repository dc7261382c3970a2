import Foundation

/// Where a frame lands inside the model's input: rows `top..<top + height`, columns `left..<left + width`.
public struct Box: Equatable {
    public let top: Int, left: Int, height: Int, width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

/// A size in pixels.
public struct PixelSize: Equatable {
    public let width: Int, height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// Python's `round`: half to even.
func roundHalfEven(_ value: Double) -> Int { Int(value.rounded(.toNearestOrEven)) }

/// `portrait_sdk.preprocess.fit_box` (letterbox): the frame scaled with its aspect kept and
/// centred in the model's input.
public func letterboxBox(frameHeight: Int, frameWidth: Int, modelHeight: Int, modelWidth: Int) -> Box {
    let scale = min(Double(modelHeight) / Double(frameHeight), Double(modelWidth) / Double(frameWidth))
    let height = min(modelHeight, max(1, roundHalfEven(Double(frameHeight) * scale)))
    let width = min(modelWidth, max(1, roundHalfEven(Double(frameWidth) * scale)))
    return Box(top: (modelHeight - height) / 2, left: (modelWidth - width) / 2, height: height, width: width)
}

/// The frame's placement in the model's input for the card's resize mode (stretch fills the whole input).
public func placement(_ resize: ResizeMode, frame: PixelSize, model: PixelSize) -> Box {
    switch resize {
    case .letterbox:
        return letterboxBox(frameHeight: frame.height, frameWidth: frame.width, modelHeight: model.height, modelWidth: model.width)
    case .stretch:
        return Box(top: 0, left: 0, height: model.height, width: model.width)
    }
}

/// The canvas a letterboxed frame is padded to (grey) before MediaPipe stretches it to the model's input.
public func letterboxCanvas(frame: PixelSize, model: PixelSize) -> (canvas: PixelSize, box: Box) {
    let wider = frame.width * model.height >= frame.height * model.width
    let canvas = wider
        ? PixelSize(width: frame.width, height: max(frame.height, roundHalfEven(Double(frame.width * model.height) / Double(model.width))))
        : PixelSize(width: max(frame.width, roundHalfEven(Double(frame.height * model.width) / Double(model.height))), height: frame.height)
    let box = Box(top: (canvas.height - frame.height) / 2, left: (canvas.width - frame.width) / 2,
                  height: frame.height, width: frame.width)
    return (canvas, box)
}

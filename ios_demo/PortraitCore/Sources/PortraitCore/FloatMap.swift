import Foundation

/// A single-channel float map, row-major.
public struct FloatMap {
    public let width: Int, height: Int
    public let values: [Float]

    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height, "\(width) x \(height) map with \(values.count) values")
        self.width = width
        self.height = height
        self.values = values
    }

    public subscript(x: Int, y: Int) -> Float { values[y * width + x] }

    /// The rows and columns of `box`.
    public func crop(_ box: Box) -> FloatMap {
        let values = (0..<(box.width * box.height)).map { self[box.left + $0 % box.width, box.top + $0 / box.width] }
        return FloatMap(width: box.width, height: box.height, values: values)
    }

    /// Bilinear resize with half-pixel centres and clamped borders: `cv2.resize(..., INTER_LINEAR)` on float32.
    public func resized(width newWidth: Int, height newHeight: Int) -> FloatMap {
        if newWidth == width && newHeight == height { return self }
        let xs = linearTaps(source: width, target: newWidth)
        let ys = linearTaps(source: height, target: newHeight)
        var out = [Float](repeating: 0, count: newWidth * newHeight)
        for (y, (sy, fy)) in ys.enumerated() {
            let sy1 = min(sy + 1, height - 1)
            for (x, (sx, fx)) in xs.enumerated() {
                let sx1 = min(sx + 1, width - 1)
                let top = self[sx, sy] * (1 - fx) + self[sx1, sy] * fx
                let bottom = self[sx, sy1] * (1 - fx) + self[sx1, sy1] * fx
                out[y * newWidth + x] = top * (1 - fy) + bottom * fy
            }
        }
        return FloatMap(width: newWidth, height: newHeight, values: out)
    }
}

/// Source index and weight of the next pixel for each output coordinate, as OpenCV's INTER_LINEAR computes it.
private func linearTaps(source: Int, target: Int) -> [(Int, Float)] {
    let scale = Double(source) / Double(target)
    return (0..<target).map { d in
        let f = Float((Double(d) + 0.5) * scale - 0.5)
        let s = Int(f.rounded(.down))
        if s < 0 { return (0, 0) }
        if s >= source - 1 { return (source - 1, 0) }
        return (s, f - Float(s))
    }
}

/// The runtime's `Segmenter.postprocess`: the model-grid mask cut to the frame's `box`, resized to the frame.
public func toFrame(_ prob: FloatMap, box: Box, frame: PixelSize) -> FloatMap {
    prob.crop(box).resized(width: frame.width, height: frame.height)
}

/// The foreground probability from an output of shape (h, w, channels), clamped to [0, 1].
public func foreground(_ output: [Float], width: Int, height: Int, channels: Int, foreground: Int) -> FloatMap {
    precondition(output.count == width * height * channels, "output is not \(width) x \(height) x \(channels)")
    let channel = channels > 1 ? foreground : 0
    return FloatMap(width: width, height: height, values: (0..<(width * height)).map { min(max(output[$0 * channels + channel], 0), 1) })
}

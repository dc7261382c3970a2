import Foundation

// The per-pixel effects of portrait_sdk/effects.py on RGBA pixels (4 bytes each, the layout of a CGContext with
// premultipliedLast over opaque frames), with OpenCV's integer rounding: blendLinear's saturate_cast, transform's
// 10-bit fixed point, RGB2GRAY's 15-bit weights. Blur and background replacement are drawn with Core Image.

/// An RGB pixel, 0...255 each.
public struct RGB: Equatable {
    public let r: Int, g: Int, b: Int

    public init(_ r: Int, _ g: Int, _ b: Int) {
        self.r = r
        self.g = g
        self.b = b
    }

    public subscript(channel: Int) -> Int { channel == 0 ? r : channel == 1 ? g : b }
}

private func saturate(_ value: Float) -> Int { min(max(Int(value.rounded(.toNearestOrEven)), 0), 255) }

/// One pixel of `effects.composite`: `fg * a + bg * (1 - a)`, as cv2.blendLinear rounds it.
public func blend(_ foreground: RGB, _ background: RGB, _ a: Float) -> RGB {
    let b = 1 - a
    let c = (0..<3).map { saturate((Float(foreground[$0]) * a + Float(background[$0]) * b) / (a + b + 1e-5)) }
    return RGB(c[0], c[1], c[2])
}

/// `effects.composite` over whole frames.
public func composite(_ foreground: [RGB], _ background: [RGB], alpha: FloatMap) -> [RGB] {
    precondition(foreground.count == alpha.values.count && background.count == foreground.count, "sizes differ")
    return foreground.indices.map { blend(foreground[$0], background[$0], alpha.values[$0]) }
}

/// `effects.matte_view`: the mask as grey pixels, white = foreground.
public func matte(_ alpha: FloatMap) -> [RGB] {
    alpha.values.map { value in
        let grey = Int((value * 255).rounded(.toNearestOrEven))
        return RGB(grey, grey, grey)
    }
}

private let fixedBits = 10

/// `cv2.transform` of one pixel by a 3x4 matrix (rows R, G, B), in OpenCV's 10-bit fixed point.
private func transform(_ pixel: RGB, _ matrix: [[Float]]) -> RGB {
    let scale = Float(1 << fixedBits)
    let out = matrix.map { row -> Int in
        let m = row.map { Int(($0 * scale).rounded(.toNearestOrEven)) }
        let sum = m[0] * pixel.r + m[1] * pixel.g + m[2] * pixel.b + m[3]
        return min(max((sum + (1 << (fixedBits - 1))) >> fixedBits, 0), 255)
    }
    return RGB(out[0], out[1], out[2])
}

// ITU-R BT.601 luma weights (effects._LUMA) and OpenCV's RGB2GRAY integer weights (15 bits).
private let luma: [Float] = [0.299, 0.587, 0.114]

private func grey(_ p: RGB) -> Int { (p.r * 9798 + p.g * 19235 + p.b * 3735 + (1 << 14)) >> 15 }

/// `effects.recolor_hair`: luminance kept, chroma replaced by `color`'s, blended by `alpha * strength`.
public func recolorHair(_ pixels: [RGB], alpha: FloatMap, color: RGB, strength: Float) -> [RGB] {
    let rgb = [Float(color.r), Float(color.g), Float(color.b)]
    let y = luma[0] * rgb[0] + luma[1] * rgb[1] + luma[2] * rgb[2]
    let dye = rgb.map { luma + [$0 - y] }
    return pixels.indices.map { i in
        let weight = alpha.values[i] * strength
        return weight > 0 ? blend(transform(pixels[i], dye), pixels[i], weight) : pixels[i]
    }
}

/// `effects.paint_nails` without gloss: `color` shaded by each pixel's luminance relative to the nails' mean.
public func paintNails(_ pixels: [RGB], alpha: FloatMap, color: RGB) -> [RGB] {
    var weighted: Float = 0
    var total: Float = 0
    for (pixel, weight) in zip(pixels, alpha.values) {
        weighted += Float(grey(pixel)) * weight
        total += weight
    }
    guard total > 0 else { return pixels }
    let meanLuma = max(weighted / total, 1)
    let paint = (0..<3).map { row in luma.map { Float(color[row]) / meanLuma * $0 } + [0] }
    return pixels.indices.map { i in
        alpha.values[i] > 0 ? blend(transform(pixels[i], paint), pixels[i], alpha.values[i]) : pixels[i]
    }
}

/// `effects.gradient_background`: the built-in replacement background, teal at the top left to violet.
public func gradientBackground(width: Int, height: Int) -> [RGB] {
    let top: [Double] = [40, 140, 150], bottom: [Double] = [90, 50, 130]
    func step(_ i: Int, _ n: Int) -> Double { n > 1 ? Double(i) / Double(n - 1) : 0 }
    return (0..<(width * height)).map { i in
        let t = step(i % width, width) * 0.6 + step(i / width, height) * 0.4
        let c = (0..<3).map { roundHalfEven(top[$0] * (1 - t) + bottom[$0] * t) }
        return RGB(c[0], c[1], c[2])
    }
}

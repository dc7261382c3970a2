import CoreImage
import UIKit
import PortraitCore

/// Frames and masks to images: Core Image for the blur and the compositing, PortraitCore for the per-pixel effects.
enum Rendering {
    private static let context = CIContext()
    private static let hairColor = RGB(150, 40, 60)
    private static let nailColor = RGB(200, 20, 60)
    private static let grey = CGFloat(128) / 255 // portrait_sdk.preprocess.GREY

    static func image(_ pixels: [RGB], _ size: PixelSize) -> CGImage {
        var bytes = [UInt8]()
        bytes.reserveCapacity(pixels.count * 4)
        for p in pixels { bytes += [UInt8(p.r), UInt8(p.g), UInt8(p.b), 255] }
        let provider = CGDataProvider(data: Data(bytes) as CFData)!
        return CGImage(width: size.width, height: size.height, bitsPerComponent: 8, bitsPerPixel: 32, bytesPerRow: 4 * size.width,
                       space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.noneSkipLast.rawValue),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)!
    }

    /// The frame on a grey canvas at `box`: a letterboxed model's input before MediaPipe scales it.
    static func padded(_ frame: Frame, canvas: PixelSize, box: Box) -> UIImage {
        let format = UIGraphicsImageRendererFormat()
        format.scale = 1
        return UIGraphicsImageRenderer(size: CGSize(width: canvas.width, height: canvas.height), format: format).image { ctx in
            UIColor(white: grey, alpha: 1).setFill()
            ctx.fill(CGRect(x: 0, y: 0, width: canvas.width, height: canvas.height))
            UIImage(cgImage: image(frame.pixels, frame.size)).draw(in: CGRect(x: box.left, y: box.top, width: box.width, height: box.height))
        }
    }

    /// The frame scaled into `box` of a grey model-sized canvas, as RGB pixels (Core Graphics' filter, not OpenCV's area).
    static func modelPixels(_ frame: Frame, model: PixelSize, box: Box) -> [RGB] {
        var bytes = [UInt8](repeating: 0, count: model.width * model.height * 4)
        let ctx = CGContext(data: &bytes, width: model.width, height: model.height, bitsPerComponent: 8, bytesPerRow: 4 * model.width,
                            space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)!
        ctx.setFillColor(gray: grey, alpha: 1)
        ctx.fill(CGRect(x: 0, y: 0, width: model.width, height: model.height))
        // Core Graphics' origin is at the bottom left
        ctx.draw(image(frame.pixels, frame.size), in: CGRect(x: box.left, y: model.height - box.top - box.height, width: box.width, height: box.height))
        return stride(from: 0, to: bytes.count, by: 4).map { RGB(Int(bytes[$0]), Int(bytes[$0 + 1]), Int(bytes[$0 + 2])) }
    }

    static func render(_ effect: Effect, _ result: Segmentation) -> CGImage {
        let frame = result.frame
        switch effect {
        case .blur, .replace:
            let input = CIImage(cvPixelBuffer: frame.buffer)
            let mask = CIImage(cgImage: image(matte(result.mask), frame.size))
            let background = effect == .blur
                ? input.clampedToExtent().applyingGaussianBlur(sigma: Double(min(frame.size.width, frame.size.height)) * 0.5 / 24).cropped(to: input.extent)
                : CIImage(cgImage: image(gradientBackground(width: frame.size.width, height: frame.size.height), frame.size))
            let blended = input.applyingFilter("CIBlendWithMask", parameters: [kCIInputBackgroundImageKey: background, kCIInputMaskImageKey: mask])
            return context.createCGImage(blended, from: input.extent)!
        case .matte:
            return image(matte(result.mask), frame.size)
        case .hairColor:
            return image(recolorHair(frame.pixels, alpha: result.mask, color: hairColor, strength: 0.8), frame.size)
        case .nails:
            return image(paintNails(frame.pixels, alpha: result.mask, color: nailColor), frame.size)
        }
    }
}

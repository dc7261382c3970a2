import CoreVideo
import PortraitCore

/// An upright camera frame as RGB pixels (PortraitCore's layout), copied out of a BGRA pixel buffer.
struct Frame {
    let size: PixelSize
    let pixels: [RGB]
    let buffer: CVPixelBuffer

    init(bgra buffer: CVPixelBuffer) {
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        let width = CVPixelBufferGetWidth(buffer), height = CVPixelBufferGetHeight(buffer)
        let stride = CVPixelBufferGetBytesPerRow(buffer)
        let base = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
        var pixels = [RGB]()
        pixels.reserveCapacity(width * height)
        for y in 0..<height {
            for x in 0..<width {
                let p = base + y * stride + 4 * x
                pixels.append(RGB(Int(p[2]), Int(p[1]), Int(p[0])))
            }
        }
        self.size = PixelSize(width: width, height: height)
        self.pixels = pixels
        self.buffer = buffer
    }
}

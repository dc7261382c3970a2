import Foundation

/// Temporal smoothing of masks across frames, as the runtime's `portrait_sdk/runtime/temporal.py`.
public enum SmoothingMode { case none, uncertainty, ema }

/// MediaPipe's hair-segmentation blend: confident pixels follow `p`, uncertain ones keep `prev`.
public func uncertaintyBlend(_ p: [Float], _ prev: [Float], ratio: Float = 0.9, eps: Float = 1e-3) -> [Float] {
    precondition(p.count == prev.count, "masks of \(p.count) and \(prev.count) values")
    let ln2 = logf(2)
    return zip(p, prev).map { (x: Float, last: Float) -> Float in
        let entropy = -(x * logf(x + eps) + (1 - x) * logf(1 - x + eps)) / ln2
        var u = min(max(1 - entropy, 0), 1)
        u *= 2 - u
        let mixed = u * x + (1 - u) * last
        return ratio * mixed + (1 - ratio) * x
    }
}

/// Exponential moving average: `alpha p + (1 - alpha) prev`.
public func emaBlend(_ p: [Float], _ prev: [Float], alpha: Float) -> [Float] {
    precondition(p.count == prev.count, "masks of \(p.count) and \(prev.count) values")
    return zip(p, prev).map { alpha * $0 + (1 - alpha) * $1 }
}

/// The blend a video stream applies; the first frame (`prev` nil) passes through.
public struct Smoothing {
    public let mode: SmoothingMode
    public let alpha: Float
    public let ratio: Float

    public init(mode: SmoothingMode, alpha: Float = 0.5, ratio: Float = 0.9) {
        self.mode = mode
        self.alpha = alpha
        self.ratio = ratio
    }

    public func apply(_ p: [Float], previous prev: [Float]?) -> [Float] {
        guard let prev = prev, prev.count == p.count else { return p }
        switch mode {
        case .none: return p
        case .ema: return emaBlend(p, prev, alpha: alpha)
        case .uncertainty: return uncertaintyBlend(p, prev, ratio: ratio)
        }
    }
}

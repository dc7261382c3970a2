import Foundation
import MediaPipeTasksVision
import PortraitCore
import TensorFlowLite

/// A segmentation result: the foreground probability at the frame's size and the inference time.
struct Segmentation {
    let frame: Frame
    let mask: FloatMap
    let inferenceMs: Double
}

/// Runs one model on upright frames; created, fed and released on the view controller's one serial queue.
protocol Engine: AnyObject {
    var engineName: String { get }
    func submit(_ frame: Frame)
}

/// MediaPipe Tasks' ImageSegmenter in live-stream mode with confidence masks, GPU delegate first, CPU if it fails.
final class MediaPipeEngine: NSObject, Engine, ImageSegmenterLiveStreamDelegate {
    private(set) var engineName = ""
    private var segmenter: ImageSegmenter?
    private let card: ModelCard
    private let smoothing: Smoothing
    private let onResult: (Segmentation) -> Void
    private var pending: [Int: (Frame, Box, Date)] = [:]
    private var previous: [Float]?

    init(modelPath: String, card: ModelCard, smoothing: Smoothing, onResult: @escaping (Segmentation) -> Void) throws {
        self.card = card
        self.smoothing = smoothing
        self.onResult = onResult
        super.init()
        var gpuFailure: Error?
        for delegate in [Delegate.GPU, Delegate.CPU] where segmenter == nil {
            let options = ImageSegmenterOptions()
            options.baseOptions.modelAssetPath = modelPath
            options.baseOptions.delegate = delegate
            options.runningMode = .liveStream
            options.shouldOutputConfidenceMasks = true
            options.shouldOutputCategoryMask = false
            options.imageSegmenterLiveStreamDelegate = self
            do { segmenter = try ImageSegmenter(options: options) } catch { gpuFailure = gpuFailure ?? error }
        }
        guard segmenter != nil else { throw gpuFailure! }
        engineName = gpuFailure.map { "MediaPipe CPU (GPU failed: \($0.localizedDescription))" } ?? "MediaPipe GPU"
    }

    func submit(_ frame: Frame) {
        let timestamp = Int(Date().timeIntervalSince1970 * 1000)
        let (canvas, box) = card.resize == .letterbox
            ? letterboxCanvas(frame: frame.size, model: PixelSize(width: card.inputWidth, height: card.inputHeight))
            : (canvas: frame.size, box: Box(top: 0, left: 0, height: frame.size.height, width: frame.size.width))
        guard let image = try? MPImage(uiImage: Rendering.padded(frame, canvas: canvas, box: box)) else { return }
        pending[timestamp] = (frame, box, Date())
        try? segmenter?.segmentAsync(image: image, timestampInMilliseconds: timestamp)
    }

    func imageSegmenter(_ imageSegmenter: ImageSegmenter, didFinishSegmentation result: ImageSegmenterResult?,
                        timestampInMilliseconds: Int, error: Error?) {
        guard let entry = pending.removeValue(forKey: timestampInMilliseconds) else { return }
        let (frame, box, started) = entry
        pending = pending.filter { $0.key > timestampInMilliseconds }
        guard let masks = result?.confidenceMasks, !masks.isEmpty else { return }
        let mask = masks[masks.count > 1 ? card.foregroundChannel : 0]
        let values = Array(UnsafeBufferPointer(start: mask.float32Data, count: mask.width * mask.height))
        let cut = toFrame(foreground(values, width: mask.width, height: mask.height, channels: 1, foreground: 0),
                          box: box, frame: frame.size)
        let smoothed = smoothing.apply(cut.values, previous: previous)
        previous = smoothed
        onResult(Segmentation(frame: frame, mask: FloatMap(width: cut.width, height: cut.height, values: smoothed),
                              inferenceMs: Date().timeIntervalSince(started) * 1000))
    }
}

/// A model with a previous-mask input channel on TensorFlow Lite's Interpreter (CPU): channel 4 is the previous
/// smoothed mask at the model's resolution, output 0 is read as probabilities.
final class InterpreterEngine: Engine {
    let engineName = "TensorFlow Lite Interpreter CPU (mask fed back)"
    private let interpreter: Interpreter
    private let card: ModelCard
    private let smoothing: Smoothing
    private let onResult: (Segmentation) -> Void
    private var previous: [Float]?

    init(modelPath: String, card: ModelCard, smoothing: Smoothing, onResult: @escaping (Segmentation) -> Void) throws {
        var options = Interpreter.Options()
        options.threadCount = 4
        interpreter = try Interpreter(modelPath: modelPath, options: options)
        try interpreter.allocateTensors()
        self.card = card
        self.smoothing = smoothing
        self.onResult = onResult
    }

    func submit(_ frame: Frame) {
        let started = Date()
        let model = PixelSize(width: card.inputWidth, height: card.inputHeight)
        let box = placement(card.resize, frame: frame.size, model: model)
        let pixels = Rendering.modelPixels(frame, model: model, box: box)
        let order = card.colorOrder == "BGR" ? [2, 1, 0] : [0, 1, 2]
        var input = [Float]()
        input.reserveCapacity(pixels.count * 4)
        for (i, pixel) in pixels.enumerated() {
            for c in 0..<3 { input.append((Float(pixel[order[c]]) - Float(card.mean[c])) / Float(card.std[c])) }
            input.append(previous?[i] ?? 0)
        }
        do {
            try interpreter.copy(input.withUnsafeBufferPointer { Data(buffer: $0) }, toInputAt: 0)
            try interpreter.invoke()
            let output = try interpreter.output(at: 0)
            let dims = output.shape.dimensions
            let values = output.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let prob = foreground(values, width: dims[2], height: dims[1], channels: dims[3], foreground: card.foregroundChannel)
            let smoothed = smoothing.apply(prob.values, previous: previous)
            previous = smoothed
            let mask = toFrame(FloatMap(width: prob.width, height: prob.height, values: smoothed), box: box, frame: frame.size)
            onResult(Segmentation(frame: frame, mask: mask, inferenceMs: Date().timeIntervalSince(started) * 1000))
        } catch {
            NSLog("inference failed: \(error)")
        }
    }
}

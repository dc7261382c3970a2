import UIKit
import PortraitCore

/// Camera frames -> the picked model -> the picked effect on screen, with FPS and inference time. The engine is
/// created, fed and released on `worker` only; a refused model shows its reason and is never loaded.
final class DemoViewController: UIViewController {
    private let worker = DispatchQueue(label: "segmenter")
    private let output = UIImageView()
    private let stats = UILabel()
    private let message = UILabel()
    private let modelButton = UIButton(type: .system)
    private let effectButton = UIButton(type: .system)
    private var camera: CameraFeed?
    private var engine: Engine? // worker only
    private var effect = Effect.matte
    private var busy = false // worker only
    private var lastFrame: Date?
    private var fps = 0.0

    /// Every `.tflite` in the app bundle with the picker's verdict (`<name>.json` beside it, else the card inside).
    private lazy var verdicts: [(path: String, verdict: Verdict)] = {
        (Bundle.main.paths(forResourcesOfType: "tflite", inDirectory: nil)).sorted().map { path in
            let file = (path as NSString).lastPathComponent
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
            let beside = try? Data(contentsOf: URL(fileURLWithPath: (path as NSString).deletingPathExtension + ".json"))
            return (path, judge(file: file, bytes: bytes, cardBeside: beside))
        }
    }()

    override func viewDidLoad() {
        super.viewDidLoad()
        view.backgroundColor = .black
        output.contentMode = .scaleAspectFit
        for label in [stats, message] {
            label.numberOfLines = 0
            label.font = .systemFont(ofSize: 13)
        }
        stats.textColor = .white
        message.textColor = .systemYellow
        let panel = UIStackView(arrangedSubviews: [modelButton, effectButton, stats, message])
        panel.axis = .vertical
        panel.backgroundColor = UIColor.black.withAlphaComponent(0.5)
        for sub in [output, panel] {
            sub.translatesAutoresizingMaskIntoConstraints = false
            view.addSubview(sub)
        }
        NSLayoutConstraint.activate([
            output.topAnchor.constraint(equalTo: view.topAnchor), output.bottomAnchor.constraint(equalTo: view.bottomAnchor),
            output.leadingAnchor.constraint(equalTo: view.leadingAnchor), output.trailingAnchor.constraint(equalTo: view.trailingAnchor),
            panel.topAnchor.constraint(equalTo: view.safeAreaLayoutGuide.topAnchor),
            panel.leadingAnchor.constraint(equalTo: view.leadingAnchor, constant: 8),
            panel.trailingAnchor.constraint(equalTo: view.trailingAnchor, constant: -8),
        ])
        modelButton.showsMenuAsPrimaryAction = true
        modelButton.menu = UIMenu(title: "Model", children: verdicts.map { entry in
            UIAction(title: label(entry.verdict)) { [weak self] _ in self?.pick(entry.path, entry.verdict) }
        })
        effectButton.showsMenuAsPrimaryAction = true
        if let first = verdicts.first { pick(first.path, first.verdict) }
        camera = CameraFeed { [weak self] buffer in self?.frameArrived(buffer) }
        do { try camera?.start() } catch { message.text = "camera: \(error)" }
    }

    private func label(_ verdict: Verdict) -> String {
        switch verdict {
        case let .runs(file, card, _, _): return "\(file) · \(card.task) · \(card.inputWidth)x\(card.inputHeight)"
        case let .refused(file, _): return "\(file) · refused"
        }
    }

    private func pick(_ path: String, _ verdict: Verdict) {
        switch verdict {
        case let .refused(file, reason):
            message.text = "\(file) cannot run here: \(reason)"
        case let .runs(file, card, runner, effects):
            modelButton.setTitle(file, for: .normal)
            message.text = "labels: \(card.labels.joined(separator: ", ")) (effects use \"\(card.foregroundLabel)\")"
            effect = effects[0]
            effectButton.setTitle(effect.rawValue, for: .normal)
            effectButton.menu = UIMenu(title: "Effect", children: effects.map { choice in
                UIAction(title: choice.rawValue) { [weak self] _ in
                    self?.effect = choice
                    self?.effectButton.setTitle(choice.rawValue, for: .normal)
                }
            })
            worker.async { self.start(path: path, card: card, runner: runner) }
        }
    }

    private func start(path: String, card: ModelCard, runner: Runner) {
        engine = nil
        let smoothing = Smoothing(mode: .uncertainty)
        let show: (Segmentation) -> Void = { [weak self] result in self?.show(result) }
        do {
            switch runner {
            case .imageSegmenter: engine = try MediaPipeEngine(modelPath: path, card: card, smoothing: smoothing, onResult: show)
            case .interpreter: engine = try InterpreterEngine(modelPath: path, card: card, smoothing: smoothing, onResult: show)
            }
            let name = engine?.engineName ?? ""
            DispatchQueue.main.async { self.stats.text = name }
        } catch {
            DispatchQueue.main.async { self.message.text = "\((path as NSString).lastPathComponent) failed to load: \(error)" }
        }
    }

    private func frameArrived(_ buffer: CVPixelBuffer) {
        worker.async {
            guard !self.busy, let engine = self.engine else { return }
            self.busy = true
            engine.submit(Frame(bgra: buffer))
            self.busy = false // MediaPipe's live stream returns at once and drops frames itself while busy
        }
    }

    private func show(_ result: Segmentation) {
        let picture = Rendering.render(effect, result)
        DispatchQueue.main.async {
            let now = Date()
            if let last = self.lastFrame { self.fps = 0.9 * self.fps + 0.1 / max(now.timeIntervalSince(last), 0.001) }
            self.lastFrame = now
            self.output.image = UIImage(cgImage: picture)
            self.stats.text = String(format: "%.1f FPS · inference %.0f ms", self.fps, result.inferenceMs)
        }
    }
}

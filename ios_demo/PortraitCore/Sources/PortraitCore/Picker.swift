import Foundation

/// The app's effects and the model tasks whose mask each uses (portrait_sdk/effects.py `EFFECTS`).
public enum Effect: String, CaseIterable {
    case blur = "blur", replace = "replace", matte = "matte", hairColor = "hair-color", nails = "nails"

    public var tasks: Set<String> {
        switch self {
        case .blur, .replace: return ["portrait", "matting"]
        case .matte: return ["portrait", "matting", "hair", "nails"]
        case .hairColor: return ["hair"]
        case .nails: return ["nails"]
        }
    }

    public static func forTask(_ task: String) -> [Effect] { allCases.filter { $0.tasks.contains(task) } }
}

/// Which engine runs a model: MediaPipe's ImageSegmenter, or TensorFlow Lite's Interpreter with the mask fed back.
public enum Runner { case imageSegmenter, interpreter }

/// The picker's verdict on one `.tflite` file.
public enum Verdict {
    case runs(file: String, card: ModelCard, runner: Runner, effects: [Effect])
    case refused(file: String, reason: String)
}

/// Judge `file` from its bytes and `<name>.json` beside it (else the card inside it): the Kotlin picker's rules.
public func judge(file: String, bytes: Data, cardBeside: Data?) -> Verdict {
    func refuse(_ reason: String) -> Verdict { .refused(file: file, reason: reason) }
    let model: TfliteModel
    do { model = try TfliteModel(bytes) } catch { return refuse("\(error)") }
    guard let text = cardBeside ?? model.embeddedCard else {
        return refuse("no model card (neither beside it nor in its metadata): export it with `portrait-sdk export`")
    }
    let card: ModelCard
    do { card = try parseCard(text) } catch { return refuse("model card: \(error)") }
    guard model.inputs.count == 1, let input = model.inputs.first else {
        return refuse("\(model.inputs.count) input tensors; one image input is needed")
    }
    guard let output = model.outputs.first else { return refuse("no output tensor") }
    let expected = [1, card.inputHeight, card.inputWidth, card.inputChannels]
    if input.shape != expected { return refuse("input shape \(input.shape) but the card says \(expected)") }
    if !input.isFloat32 || !output.isFloat32 { return refuse("only float32 input and output tensors are supported") }
    if output.shape.count != 4 { return refuse("output 0 has shape \(output.shape); a (1, h, w, c) mask is needed") }
    if card.inputChannels == 4 { return .runs(file: file, card: card, runner: .interpreter, effects: Effect.forTask(card.task)) }
    if card.inputChannels != 3 { return refuse("\(card.inputChannels)-channel input; 3 (RGB) or 4 (RGB + previous mask) are supported") }
    if model.outputs.count != 1 {
        return refuse("\(model.outputs.count) outputs; MediaPipe's ImageSegmenter runs single-output models: export the mask head alone")
    }
    return .runs(file: file, card: card, runner: .imageSegmenter, effects: Effect.forTask(card.task))
}

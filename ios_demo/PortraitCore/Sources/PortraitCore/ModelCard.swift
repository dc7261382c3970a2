import Foundation

/// How a frame of another aspect ratio is fitted to the model's input (`input.resize` of the card).
public enum ResizeMode: String { case letterbox, stretch }

/// The part of the portrait-sdk model card (portrait_sdk/model_card.py) the app uses.
public struct ModelCard: Equatable {
    public let name: String, task: String, precision: String
    public let inputHeight: Int, inputWidth: Int, inputChannels: Int
    public let colorOrder: String
    public let mean: [Double], std: [Double]
    public let resize: ResizeMode
    public let outputKind: String
    public let labels: [String]
    public let foregroundChannel: Int

    /// The label of the mask the effects use.
    public var foregroundLabel: String {
        labels.indices.contains(foregroundChannel) ? labels[foregroundChannel] : labels.first ?? "foreground"
    }
}

/// Every card field the app reads, as dotted paths; tests/vectors/mobile_contract.json lists the same.
public let cardFields = [
    "name", "task", "precision", "input.height", "input.width", "input.channels", "input.color_order",
    "input.mean", "input.std", "input.resize", "output.kind", "output.labels", "output.foreground_channel",
]

/// A card that cannot be used, with the reason in words.
public struct CardError: Error, CustomStringConvertible {
    public let description: String
}

private func value(_ card: [String: Any], _ path: String) throws -> Any {
    precondition(cardFields.contains(path), "\(path) is not a card field the app reads")
    var node: Any = card
    for key in path.split(separator: ".") {
        guard let table = node as? [String: Any], let next = table[String(key)] else { throw CardError(description: "\(path) is missing") }
        node = next
    }
    return node
}

private func text(_ card: [String: Any], _ path: String) throws -> String {
    guard let value = try value(card, path) as? String else { throw CardError(description: "\(path) is not text") }
    return value
}

private func int(_ card: [String: Any], _ path: String) throws -> Int {
    guard let value = try value(card, path) as? NSNumber else { throw CardError(description: "\(path) is not a number") }
    return value.intValue
}

private func numbers(_ card: [String: Any], _ path: String) throws -> [Double] {
    guard let values = try value(card, path) as? [NSNumber] else { throw CardError(description: "\(path) is not a list of numbers") }
    return values.map(\.doubleValue)
}

/// Parse a model card's JSON; a missing or malformed field is a `CardError` naming it.
public func parseCard(_ json: Data) throws -> ModelCard {
    guard let card = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
        throw CardError(description: "not a model card (not a JSON object)")
    }
    let resize = try text(card, "input.resize")
    guard let mode = ResizeMode(rawValue: resize) else { throw CardError(description: "input.resize \(resize) is unknown") }
    guard let labels = try value(card, "output.labels") as? [String] else { throw CardError(description: "output.labels is not a list of text") }
    return try ModelCard(
        name: text(card, "name"), task: text(card, "task"), precision: text(card, "precision"),
        inputHeight: int(card, "input.height"), inputWidth: int(card, "input.width"),
        inputChannels: int(card, "input.channels"), colorOrder: text(card, "input.color_order"),
        mean: numbers(card, "input.mean"), std: numbers(card, "input.std"), resize: mode,
        outputKind: text(card, "output.kind"), labels: labels,
        foregroundChannel: int(card, "output.foreground_channel"))
}

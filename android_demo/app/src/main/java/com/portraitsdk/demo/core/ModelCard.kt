package com.portraitsdk.demo.core

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject

/** How a frame of another aspect ratio is fitted to the model's input (`input.resize` of the card). */
enum class ResizeMode { LETTERBOX, STRETCH }

/** The part of the portrait-sdk model card (portrait_sdk/model_card.py) the apps use. */
data class ModelCard(
    val name: String,
    val task: String,
    val precision: String,
    val inputHeight: Int,
    val inputWidth: Int,
    val inputChannels: Int,
    val colorOrder: String,
    val mean: List<Double>,
    val std: List<Double>,
    val resize: ResizeMode,
    val outputKind: String,
    val labels: List<String>,
    val foregroundChannel: Int
) {
    /** The label of the mask the effects use. */
    val foregroundLabel: String get() = labels.getOrElse(foregroundChannel) { labels.firstOrNull() ?: "foreground" }
}

/** Every card field the apps read, as dotted paths; tests/vectors/mobile_contract.json lists the same. */
val CARD_FIELDS =
    listOf(
        "name", "task", "precision", "input.height", "input.width", "input.channels", "input.color_order",
        "input.mean", "input.std", "input.resize", "output.kind", "output.labels", "output.foreground_channel"
    )

/** A card that cannot be used, with the reason in words. */
class CardException(message: String) : Exception(message)

private fun JSONObject.at(path: String): Any {
    require(path in CARD_FIELDS) { "$path is not a card field the apps read" }
    val keys = path.split(".")
    val parent = keys.dropLast(1).fold(this) { node, key -> node.getJSONObject(key) }
    return parent.get(keys.last())
}

private fun JSONObject.text(path: String): String = at(path) as? String ?: throw CardException("$path is not text")

private fun JSONObject.int(path: String): Int = (at(path) as? Number)?.toInt() ?: throw CardException("$path is not a number")

private fun JSONObject.list(path: String): List<Any> =
    (at(path) as? JSONArray)?.let { a -> List(a.length()) { a.get(it) } } ?: throw CardException("$path is not a list")

private fun JSONObject.numbers(path: String): List<Double> = list(path).map {
    (it as? Number)?.toDouble()
        ?: throw CardException("$path holds a non-number")
}

/** Parse a model card's JSON text; a missing or malformed field is a [CardException] naming it. */
fun parseCard(json: String): ModelCard = try {
    val card = JSONObject(json)
    val resize = card.text("input.resize")
    ModelCard(
        name = card.text("name"),
        task = card.text("task"),
        precision = card.text("precision"),
        inputHeight = card.int("input.height"),
        inputWidth = card.int("input.width"),
        inputChannels = card.int("input.channels"),
        colorOrder = card.text("input.color_order"),
        mean = card.numbers("input.mean"),
        std = card.numbers("input.std"),
        resize =
            ResizeMode.entries.firstOrNull { it.name.equals(resize, ignoreCase = true) }
                ?: throw CardException("input.resize $resize is unknown"),
        outputKind = card.text("output.kind"),
        labels = card.list("output.labels").map { it.toString() },
        foregroundChannel = card.int("output.foreground_channel")
    )
} catch (error: JSONException) {
    throw CardException("not a model card: ${error.message}")
}

package com.portraitsdk.demo.core

/** The app's effects and the model tasks whose mask each uses (portrait_sdk/effects.py `EFFECTS`). */
enum class Effect(val id: String, val tasks: Set<String>) {
    BLUR("blur", setOf("portrait", "matting")),
    REPLACE("replace", setOf("portrait", "matting")),
    MATTE("matte", setOf("portrait", "matting", "hair", "nails")),
    HAIR_COLOR("hair-color", setOf("hair")),
    NAILS("nails", setOf("nails"))
    ;

    companion object {
        fun forTask(task: String): List<Effect> = entries.filter { task in it.tasks }
    }
}

/** Which engine runs a model: MediaPipe's ImageSegmenter, or LiteRT's Interpreter with the mask fed back. */
enum class Runner { IMAGE_SEGMENTER, INTERPRETER }

/** The picker's verdict on one `.tflite` file. */
sealed interface Verdict {
    val file: String

    data class Runs(override val file: String, val card: ModelCard, val runner: Runner, val effects: List<Effect>) : Verdict

    data class Refused(override val file: String, val reason: String) : Verdict
}

/**
 * Judge [file] from its bytes and the text of `<name>.json` beside it ([cardBeside], else the card embedded in
 * the file). MediaPipe's ImageSegmenter takes one 3-channel float input and one output; a 4-channel model
 * (RGB + previous mask) runs on LiteRT's Interpreter, which reads output 0 only. Anything else is refused with
 * the reason, so that a dropped-in file never crashes the app.
 */
fun judge(file: String, bytes: ByteArray, cardBeside: String?): Verdict {
    fun refuse(reason: String) = Verdict.Refused(file, reason)
    val model =
        try {
            TfliteModel.read(bytes)
        } catch (error: IllegalArgumentException) {
            return refuse(error.message ?: "unreadable TFLite file")
        }
    val text =
        cardBeside ?: model.embeddedCard
            ?: return refuse(
                "no model card (neither ${file.removeSuffix(
                    ".tflite"
                )}.json beside it nor one in its metadata): export it with `portrait-sdk export`"
            )
    val card =
        try {
            parseCard(text)
        } catch (error: CardException) {
            return refuse("model card: ${error.message}")
        }
    val input = model.inputs.singleOrNull() ?: return refuse("${model.inputs.size} input tensors; one image input is needed")
    val output = model.outputs.firstOrNull() ?: return refuse("no output tensor")
    val expected = listOf(1, card.inputHeight, card.inputWidth, card.inputChannels)
    return when {
        input.shape != expected -> refuse("input shape ${input.shape} but the card says $expected")

        !input.isFloat32 || !output.isFloat32 -> refuse("only float32 input and output tensors are supported")

        output.shape.size != 4 || output.shape[1] < 1 -> refuse("output 0 has shape ${output.shape}; a (1, h, w, c) mask is needed")

        card.inputChannels == 4 -> Verdict.Runs(file, card, Runner.INTERPRETER, Effect.forTask(card.task))

        card.inputChannels != 3 -> refuse("${card.inputChannels}-channel input; 3 (RGB) or 4 (RGB + previous mask) are supported")

        model.outputs.size != 1 ->
            refuse("${model.outputs.size} outputs; MediaPipe's ImageSegmenter runs single-output models: export the mask head alone")

        else -> Verdict.Runs(file, card, Runner.IMAGE_SEGMENTER, Effect.forTask(card.task))
    }
}

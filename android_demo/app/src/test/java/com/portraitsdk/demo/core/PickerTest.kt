package com.portraitsdk.demo.core

import java.io.File
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class PickerTest {
    private val someCard = File(Fixtures.releasedModels.first().path.removeSuffix(".tflite") + ".json").readText()

    @Test
    fun cardFieldsAreTheContracts() {
        assertEquals(Fixtures.contract.getJSONArray("card_fields").strings(), CARD_FIELDS)
    }

    /** A card cut down to [CARD_FIELDS] parses, and without any one of them it is refused: they are exactly what is read. */
    @Test
    fun parserReadsExactlyTheCardFields() {
        fun only(fields: List<String>): String {
            val full = JSONObject(someCard)
            val out = JSONObject()
            for (path in fields) {
                val keys = path.split(".")
                val source = keys.dropLast(1).fold(full) { node, key -> node.getJSONObject(key) }
                val target = keys.dropLast(1).fold(out) { node, key -> node.optJSONObject(key) ?: JSONObject().also { node.put(key, it) } }
                target.put(keys.last(), source.get(keys.last()))
            }
            return out.toString()
        }
        assertEquals(parseCard(someCard), parseCard(only(CARD_FIELDS)))
        for (missing in CARD_FIELDS) {
            try {
                parseCard(only(CARD_FIELDS - missing))
                fail("a card without $missing parsed")
            } catch (expected: CardException) {
                assertTrue(expected.message!!, expected.message!!.contains(missing.substringAfterLast(".")))
            }
        }
    }

    @Test
    fun everyReleasedFileIsJudgedFromItsOwnBytes() {
        assertTrue("no released files found", Fixtures.releasedModels.isNotEmpty())
        for (file in Fixtures.releasedModels) {
            val bytes = file.readBytes()
            val model = TfliteModel.read(bytes)
            val beside = File(file.path.removeSuffix(".tflite") + ".json").readText()
            assertEquals("${file.name}: embedded card", parseCard(beside), parseCard(model.embeddedCard!!))
            val card = parseCard(beside)
            assertEquals(file.name, listOf(1, card.inputHeight, card.inputWidth, card.inputChannels), model.inputs.single().shape)
            val verdict = judge(file.name, bytes, null)
            when {
                card.inputChannels == 4 -> assertEquals(file.name, Runner.INTERPRETER, (verdict as Verdict.Runs).runner)
                model.outputs.size == 1 -> assertEquals(file.name, Runner.IMAGE_SEGMENTER, (verdict as Verdict.Runs).runner)
                else -> assertTrue("${file.name}: $verdict", (verdict as Verdict.Refused).reason.contains("${model.outputs.size} outputs"))
            }
            if (verdict is Verdict.Runs) assertEquals(Effect.forTask(card.task), verdict.effects)
        }
    }

    @Test
    fun brokenFilesAreRefusedNotThrown() {
        val good = Fixtures.releasedModels.first().readBytes()
        assertTrue(judge("junk.tflite", ByteArray(64), null) is Verdict.Refused)
        assertTrue(judge("cut.tflite", good.copyOf(400), someCard) is Verdict.Refused)
        assertTrue(judge("bad.tflite", good, "{\"name\": 1}") is Verdict.Refused)
        val wrongSize = someCard.replace("\"height\": ", "\"height\": 1")
        val verdict = judge("other.tflite", good, wrongSize)
        assertTrue(verdict.toString(), verdict is Verdict.Refused && verdict.reason.startsWith("input shape"))
    }
}

package com.portraitsdk.demo.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** A tensor of subgraph 0: its shape and TFLite `TensorType` (0 = FLOAT32). */
data class TensorInfo(val shape: List<Int>, val type: Int) {
    val isFloat32: Boolean get() = type == 0
}

/**
 * What the picker needs from a `.tflite` file without running it: the input and output tensors of subgraph 0
 * (read from the flatbuffer) and the files packed after it as a zip (`model_card.json`, `labels.txt`), as
 * portrait_sdk/metadata.py attaches them.
 */
class TfliteModel(val inputs: List<TensorInfo>, val outputs: List<TensorInfo>, val packedFiles: Map<String, ByteArray>) {
    /** The model card embedded by `portrait-sdk export`, if any. */
    val embeddedCard: String? get() = packedFiles[CARD_FILE]?.toString(Charsets.UTF_8)

    companion object {
        const val CARD_FILE = "model_card.json"

        /** Parse [bytes]; a file that is not a TFLite flatbuffer is an [IllegalArgumentException]. */
        fun read(bytes: ByteArray): TfliteModel {
            val buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
            require(bytes.size >= 8 && String(bytes, 4, 4, Charsets.US_ASCII) == "TFL3") { "not a TFLite model (no TFL3 identifier)" }
            return try {
                val model = Table.root(buffer)
                val subgraph = model.tables(SUBGRAPHS).firstOrNull() ?: throw IllegalArgumentException("the model has no subgraph")
                val tensors = subgraph.tables(TENSORS)
                fun describe(field: Int) = subgraph.ints(field).map { TensorInfo(tensors[it].ints(SHAPE), tensors[it].byte(TYPE)) }
                TfliteModel(describe(INPUTS), describe(OUTPUTS), storedZipEntries(buffer))
            } catch (error: IndexOutOfBoundsException) {
                throw IllegalArgumentException("truncated or corrupt TFLite flatbuffer", error)
            }
        }

        // Field numbers in the TFLite schema: Model.subgraphs; SubGraph.tensors, inputs, outputs; Tensor.shape, type.
        private const val SUBGRAPHS = 2
        private const val TENSORS = 0
        private const val INPUTS = 1
        private const val OUTPUTS = 2
        private const val SHAPE = 0
        private const val TYPE = 1
    }
}

/** A flatbuffer table at [position] of [buffer]: fields found through its vtable. */
private class Table(private val buffer: ByteBuffer, private val position: Int) {
    private fun field(index: Int): Int {
        val vtable = position - buffer.getInt(position)
        val entry = 4 + 2 * index
        return if (entry < buffer.getShort(vtable).toInt()) buffer.getShort(vtable + entry).toInt() else 0
    }

    private fun vector(index: Int): Pair<Int, Int>? {
        val offset = field(index).takeIf { it != 0 } ?: return null
        val start = position + offset + buffer.getInt(position + offset)
        return start + 4 to buffer.getInt(start)
    }

    fun byte(index: Int): Int = field(index).let { if (it == 0) 0 else buffer.get(position + it).toInt() }

    fun ints(index: Int): List<Int> =
        vector(index)?.let { (start, length) -> List(length) { buffer.getInt(start + 4 * it) } } ?: emptyList()

    fun tables(index: Int): List<Table> = vector(index)?.let { (start, length) ->
        List(length) { start + 4 * it }.map { Table(buffer, it + buffer.getInt(it)) }
    } ?: emptyList()

    companion object {
        fun root(buffer: ByteBuffer) = Table(buffer, buffer.getInt(0))
    }
}

private const val END_OF_CENTRAL_DIRECTORY = 0x06054b50
private const val CENTRAL_ENTRY = 0x02014b50
private const val STORED = 0

/** The uncompressed ("stored") entries of a zip appended to the file, as tflite-support's populator writes. */
private fun storedZipEntries(buffer: ByteBuffer): Map<String, ByteArray> {
    val end =
        (buffer.limit() - 22 downTo maxOf(0, buffer.limit() - 22 - 0xFFFF)).firstOrNull { buffer.getInt(it) == END_OF_CENTRAL_DIRECTORY }
            ?: return emptyMap()
    var entry = buffer.getInt(end + 16)
    val files = mutableMapOf<String, ByteArray>()
    repeat(buffer.getShort(end + 10).toInt() and 0xFFFF) {
        if (buffer.getInt(entry) != CENTRAL_ENTRY) return files
        val size = buffer.getInt(entry + 24)
        val nameLength = buffer.getShort(entry + 28).toInt() and 0xFFFF
        val name = buffer.array().copyOfRange(entry + 46, entry + 46 + nameLength).toString(Charsets.UTF_8)
        if (buffer.getShort(entry + 10).toInt() == STORED) {
            val local = buffer.getInt(entry + 42)
            val data = local + 30 + (buffer.getShort(local + 26).toInt() and 0xFFFF) + (buffer.getShort(local + 28).toInt() and 0xFFFF)
            files[name] = buffer.array().copyOfRange(data, data + size)
        }
        entry += 46 + nameLength + (buffer.getShort(entry + 30).toInt() and 0xFFFF) + (buffer.getShort(entry + 32).toInt() and 0xFFFF)
    }
    return files
}

package com.portraitsdk.demo.core

import java.io.File
import org.json.JSONArray
import org.json.JSONObject

/** The repository's folders the tests read, passed by the build as system properties (see app/build.gradle.kts). */
object Fixtures {
    private fun folder(property: String): File =
        File(System.getProperty(property) ?: error("set -D$property to the repository's folder")).also {
            check(it.isDirectory) { "$it (-D$property) is not a folder" }
        }

    val vectors: JSONObject by lazy { JSONObject(File(folder("portrait.vectors"), "mobile_logic.json").readText()) }
    val contract: JSONObject by lazy { JSONObject(File(folder("portrait.vectors"), "mobile_contract.json").readText()) }

    /** The released `.tflite` files in export/. */
    val releasedModels: List<File> by lazy { folder("portrait.export").listFiles { f -> f.extension == "tflite" }!!.sorted() }
}

fun JSONArray.floats(): FloatArray = FloatArray(length()) { getDouble(it).toFloat() }

fun JSONArray.ints(): IntArray = IntArray(length()) { getInt(it) }

fun JSONArray.strings(): List<String> = List(length()) { getString(it) }

/** Flat RGB values -> ARGB pixels. */
fun IntArray.toPixels(): IntArray = IntArray(size / 3) { argb(this[3 * it], this[3 * it + 1], this[3 * it + 2]) }

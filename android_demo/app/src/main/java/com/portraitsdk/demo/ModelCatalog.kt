package com.portraitsdk.demo

import android.content.res.AssetManager
import com.portraitsdk.demo.core.Verdict
import com.portraitsdk.demo.core.judge
import java.io.FileNotFoundException

/**
 * Every `.tflite` in the app's assets with the picker's verdict: the file's bytes and `<name>.json` beside it
 * (else the card in its metadata) decide whether and how it runs. Assets are stored uncompressed (noCompress).
 */
class ModelCatalog(private val assets: AssetManager) {
    fun bytes(file: String): ByteArray = assets.open(file).use { it.readBytes() }

    fun verdicts(): List<Verdict> = assets.list("").orEmpty().filter { it.endsWith(".tflite") }.sorted().map { file ->
        val beside =
            try {
                assets.open(file.removeSuffix(".tflite") + ".json").use { it.readBytes().toString(Charsets.UTF_8) }
            } catch (missing: FileNotFoundException) {
                null
            }
        judge(file, bytes(file), beside)
    }
}

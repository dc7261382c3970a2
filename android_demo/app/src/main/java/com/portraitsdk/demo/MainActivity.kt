package com.portraitsdk.demo

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.os.Bundle
import android.os.SystemClock
import android.view.Surface
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import com.portraitsdk.demo.core.Effect
import com.portraitsdk.demo.core.Runner
import com.portraitsdk.demo.core.Smoothing
import com.portraitsdk.demo.core.SmoothingMode
import com.portraitsdk.demo.core.Verdict
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Camera frames -> the picked model (MediaPipe ImageSegmenter or LiteRT Interpreter) -> the picked effect on
 * screen, with FPS and inference time. The engine is created, used and closed on [worker] only.
 */
class MainActivity : Activity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private val busy = AtomicBoolean(false)
    private lateinit var output: ImageView
    private lateinit var stats: TextView
    private lateinit var message: TextView
    private lateinit var effects: Spinner
    private lateinit var verdicts: List<Verdict>
    private var camera: CameraFrames? = null

    @Volatile private var engine: Engine? = null // created, fed and closed on the worker only
    private var effect = Effect.MATTE
    private var lastFrameAt = 0L
    private var fps = 0.0

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        output = findViewById(R.id.output)
        stats = findViewById(R.id.stats)
        message = findViewById(R.id.message)
        effects = findViewById(R.id.effects)
        val catalog = ModelCatalog(assets)
        verdicts = catalog.verdicts()
        val models = findViewById<Spinner>(R.id.models)
        models.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, verdicts.map(::label))
        models.onItemSelectedListener = selected { pick(catalog, verdicts[it]) }
        effects.onItemSelectedListener = selected { position -> effect = (effects.adapter.getItem(position) as EffectItem).effect }
    }

    private fun label(verdict: Verdict): String = when (verdict) {
        is Verdict.Runs -> "${verdict.file} · ${verdict.card.task} · ${verdict.card.inputWidth}x${verdict.card.inputHeight}"
        is Verdict.Refused -> "${verdict.file} · refused"
    }

    private fun pick(catalog: ModelCatalog, verdict: Verdict) {
        when (verdict) {
            is Verdict.Refused -> message.text = getString(R.string.refused, verdict.file, verdict.reason)

            is Verdict.Runs -> {
                message.text = getString(R.string.labels, verdict.card.labels.joinToString(), verdict.card.foregroundLabel)
                effects.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, verdict.effects.map(::EffectItem))
                effect = verdict.effects.first()
                worker.execute { switchTo(catalog, verdict) }
            }
        }
    }

    /** On the worker: close the running engine and start the picked one; a failure is shown, not thrown. */
    private fun switchTo(catalog: ModelCatalog, verdict: Verdict.Runs) {
        engine?.close()
        engine = null
        val smoothing = Smoothing(SmoothingMode.UNCERTAINTY)
        engine =
            try {
                val bytes = catalog.bytes(verdict.file)
                when (verdict.runner) {
                    Runner.IMAGE_SEGMENTER -> MediaPipeEngine(this, bytes, verdict.card, smoothing, ::show, ::fail)
                    Runner.INTERPRETER -> InterpreterEngine(bytes, verdict.card, smoothing, ::show)
                }
            } catch (error: RuntimeException) {
                fail("${verdict.file} failed to load: ${error.message}")
                null
            }
        engine?.let { running -> runOnUiThread { stats.text = running.description } }
    }

    private fun show(result: Segmentation) {
        val picture = EffectRenderer.render(effect, result)
        val now = SystemClock.uptimeMillis()
        if (lastFrameAt > 0) fps = 0.9 * fps + 0.1 * 1000.0 / maxOf(1L, now - lastFrameAt)
        lastFrameAt = now
        val line = getString(R.string.stats, fps, result.inferenceMs, engine?.description.orEmpty())
        runOnUiThread {
            output.setImageBitmap(picture)
            stats.text = line
        }
    }

    private fun fail(reason: String) {
        runOnUiThread { message.text = reason }
    }

    override fun onResume() {
        super.onResume()
        if (checkSelfPermission(Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            requestPermissions(arrayOf(Manifest.permission.CAMERA), CAMERA_REQUEST)
            return
        }
        camera =
            CameraFrames(this, ::displayDegrees, { frame ->
                if (busy.compareAndSet(false, true)) worker.execute { submit(frame) }
            }, ::fail).also { it.start() }
    }

    private fun submit(frame: Bitmap) {
        try {
            engine?.submit(frame)
        } catch (error: RuntimeException) {
            fail("inference failed: ${error.message}")
        } finally {
            busy.set(false) // MediaPipe's live stream returns at once and drops frames itself while busy
        }
    }

    @Suppress("DEPRECATION") // Display.getRotation through the window manager works from API 24 on
    private fun displayDegrees(): Int =
        when (windowManager.defaultDisplay.rotation) {
            Surface.ROTATION_90 -> 90
            Surface.ROTATION_180 -> 180
            Surface.ROTATION_270 -> 270
            else -> 0
        }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        if (requestCode == CAMERA_REQUEST && grantResults.firstOrNull() != PackageManager.PERMISSION_GRANTED) {
            message.text = getString(R.string.no_camera)
        }
    }

    override fun onPause() {
        camera?.close()
        camera = null
        super.onPause()
    }

    override fun onDestroy() {
        worker.execute { engine?.close() }
        worker.shutdown()
        super.onDestroy()
    }

    /** An effect as the spinner shows it. */
    private class EffectItem(val effect: Effect) {
        override fun toString() = effect.id
    }

    private fun selected(action: (Int) -> Unit) = object : AdapterView.OnItemSelectedListener {
        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = action(position)

        override fun onNothingSelected(parent: AdapterView<*>?) = Unit
    }

    private companion object {
        const val CAMERA_REQUEST = 1
    }
}

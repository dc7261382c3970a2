package com.portraitsdk.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.os.SystemClock
import com.google.mediapipe.framework.image.BitmapImageBuilder
import com.google.mediapipe.framework.image.ByteBufferExtractor
import com.google.mediapipe.framework.image.MPImage
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.core.Delegate
import com.google.mediapipe.tasks.vision.core.ImageProcessingOptions
import com.google.mediapipe.tasks.vision.core.RunningMode
import com.google.mediapipe.tasks.vision.imagesegmenter.ImageSegmenter
import com.google.mediapipe.tasks.vision.imagesegmenter.ImageSegmenterResult
import com.portraitsdk.demo.core.Box
import com.portraitsdk.demo.core.FloatMap
import com.portraitsdk.demo.core.ModelCard
import com.portraitsdk.demo.core.ResizeMode
import com.portraitsdk.demo.core.Size
import com.portraitsdk.demo.core.Smoothing
import com.portraitsdk.demo.core.foreground
import com.portraitsdk.demo.core.letterboxCanvas
import com.portraitsdk.demo.core.placement
import com.portraitsdk.demo.core.toFrame
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.tensorflow.lite.InterpreterApi

/** A segmentation result: the foreground probability at the frame's size and the inference time. */
class Segmentation(val frame: Bitmap, val mask: FloatMap, val inferenceMs: Long)

/** Runs one model on upright frames; created, fed and closed on the activity's one background executor. */
interface Engine : AutoCloseable {
    /** What it runs on, e.g. "MediaPipe GPU" or "MediaPipe CPU (GPU failed: ...)". */
    val description: String

    /** Segment [frame]; the result goes to the listener given at creation (later, for MediaPipe's live stream). */
    fun submit(frame: Bitmap)
}

private fun directBuffer(bytes: ByteArray): ByteBuffer =
    ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).put(bytes).apply {
        rewind()
    }

/** Pads a letterboxed model's frame to the model's aspect (grey 128): MediaPipe then scales it uniformly. */
private fun padToModel(frame: Bitmap, card: ModelCard): Pair<Bitmap, Box> {
    val size = Size(frame.width, frame.height)
    if (card.resize == ResizeMode.STRETCH) return frame to Box(0, 0, frame.height, frame.width)
    val (canvasSize, box) = letterboxCanvas(size, Size(card.inputWidth, card.inputHeight))
    val canvas = Bitmap.createBitmap(canvasSize.width, canvasSize.height, Bitmap.Config.ARGB_8888)
    Canvas(canvas).apply {
        drawColor(Color.rgb(LETTERBOX_GREY, LETTERBOX_GREY, LETTERBOX_GREY))
        drawBitmap(frame, box.left.toFloat(), box.top.toFloat(), null)
    }
    return canvas to box
}

const val LETTERBOX_GREY = 128

/**
 * MediaPipe Tasks' ImageSegmenter in LIVE_STREAM mode with confidence masks, on the GPU delegate, falling back
 * to the CPU (and saying so in [description]) when the GPU delegate cannot be created.
 */
class MediaPipeEngine(
    context: Context,
    model: ByteArray,
    private val card: ModelCard,
    private val smoothing: Smoothing,
    private val onResult: (Segmentation) -> Unit,
    private val onError: (String) -> Unit
) : Engine {
    private val pending = ArrayDeque<Triple<Long, Bitmap, Box>>()
    private var previous: FloatArray? = null
    override val description: String
    private val segmenter: ImageSegmenter

    init {
        val (gpu, failure) =
            try {
                create(context, model, Delegate.GPU) to null
            } catch (error: RuntimeException) {
                null to error.message
            }
        segmenter = gpu ?: create(context, model, Delegate.CPU)
        description = if (gpu != null) "MediaPipe GPU" else "MediaPipe CPU (GPU failed: $failure)"
    }

    private fun create(context: Context, model: ByteArray, delegate: Delegate): ImageSegmenter {
        val base = BaseOptions.builder().setModelAssetBuffer(directBuffer(model)).setDelegate(delegate).build()
        val options =
            ImageSegmenter.ImageSegmenterOptions.builder()
                .setBaseOptions(base)
                .setRunningMode(RunningMode.LIVE_STREAM)
                .setOutputConfidenceMasks(true)
                .setOutputCategoryMask(false)
                .setResultListener { result: ImageSegmenterResult, _: MPImage -> deliver(result) }
                .setErrorListener { error -> onError(error.message ?: error.toString()) }
                .build()
        return ImageSegmenter.createFromOptions(context, options)
    }

    override fun submit(frame: Bitmap) {
        val (input, box) = padToModel(frame, card)
        val timestamp = SystemClock.uptimeMillis()
        synchronized(pending) { pending.addLast(Triple(timestamp, frame, box)) }
        segmenter.segmentAsync(BitmapImageBuilder(input).build(), ImageProcessingOptions.builder().setRotationDegrees(0).build(), timestamp)
    }

    private fun deliver(result: ImageSegmenterResult) {
        val (timestamp, frame, box) =
            synchronized(pending) {
                while (pending.size > 1 && pending.first().first < result.timestampMs()) pending.removeFirst()
                pending.removeFirstOrNull()
            } ?: return
        val masks = result.confidenceMasks().orElse(emptyList())
        val mask = masks.getOrNull(if (masks.size > 1) card.foregroundChannel else 0) ?: return
        val values = FloatArray(mask.width * mask.height)
        ByteBufferExtractor.extract(mask).order(ByteOrder.nativeOrder()).asFloatBuffer().get(values)
        val probability = foreground(values, mask.width, mask.height, 1, 0)
        val cut = toFrame(probability, box, Size(frame.width, frame.height))
        val smoothed = smoothing.apply(cut.values, previous).also { previous = it }
        onResult(Segmentation(frame, FloatMap(cut.width, cut.height, smoothed), SystemClock.uptimeMillis() - timestamp))
    }

    override fun close() = segmenter.close()
}

/**
 * A model with a previous-mask input channel on LiteRT's Interpreter (CPU, XNNPACK): the frame letterboxed or
 * stretched to the model's input and normalised as the card says, channel 4 the previous smoothed mask at the
 * model's resolution, output 0 read as probabilities.
 */
class InterpreterEngine(
    model: ByteArray,
    private val card: ModelCard,
    private val smoothing: Smoothing,
    private val onResult: (Segmentation) -> Unit
) : Engine {
    init {
        require(card.inputChannels == 4) { "the Interpreter engine feeds the mask back as input channel 4" }
    }

    private val interpreter = InterpreterApi.create(directBuffer(model), InterpreterApi.Options().setNumThreads(THREADS))
    private val modelSize = Size(card.inputWidth, card.inputHeight)
    private val input = ByteBuffer.allocateDirect(
        4 * modelSize.width * modelSize.height * card.inputChannels
    ).order(ByteOrder.nativeOrder())
    private val outputShape = interpreter.getOutputTensor(0).shape()
    private val output = ByteBuffer.allocateDirect(4 * outputShape.fold(1) { a, b -> a * b }).order(ByteOrder.nativeOrder())
    private var previous: FloatArray? = null
    override val description = "LiteRT Interpreter CPU ($THREADS threads, mask fed back)"

    override fun submit(frame: Bitmap) {
        val start = SystemClock.uptimeMillis()
        val box = placement(card.resize, Size(frame.width, frame.height), modelSize)
        val pixels = modelPixels(frame, box)
        val order = if (card.colorOrder == "BGR") intArrayOf(0, 8, 16) else intArrayOf(16, 8, 0)
        input.rewind()
        for (i in pixels.indices) {
            for (c in 0 until 3) input.putFloat((((pixels[i] shr order[c]) and 0xFF) - card.mean[c].toFloat()) / card.std[c].toFloat())
            input.putFloat(previous?.get(i) ?: 0f)
        }
        input.rewind()
        output.rewind()
        interpreter.run(input, output)
        output.rewind()
        val values = FloatArray(output.capacity() / 4).also { output.asFloatBuffer().get(it) }
        val probability = foreground(values, outputShape[2], outputShape[1], outputShape[3], card.foregroundChannel)
        val smoothed = smoothing.apply(probability.values, previous).also { previous = it }
        val mask = toFrame(FloatMap(probability.width, probability.height, smoothed), box, Size(frame.width, frame.height))
        onResult(Segmentation(frame, mask, SystemClock.uptimeMillis() - start))
    }

    /** The frame scaled into [box] of a grey model-sized canvas (Android's bilinear filter, not OpenCV's area). */
    private fun modelPixels(frame: Bitmap, box: Box): IntArray {
        val canvas = Bitmap.createBitmap(modelSize.width, modelSize.height, Bitmap.Config.ARGB_8888)
        Canvas(canvas).apply {
            drawColor(Color.rgb(LETTERBOX_GREY, LETTERBOX_GREY, LETTERBOX_GREY))
            drawBitmap(Bitmap.createScaledBitmap(frame, box.width, box.height, true), box.left.toFloat(), box.top.toFloat(), null)
        }
        return IntArray(modelSize.width * modelSize.height).also {
            canvas.getPixels(it, 0, modelSize.width, 0, 0, modelSize.width, modelSize.height)
        }
    }

    override fun close() = interpreter.close()

    private companion object {
        const val THREADS = 4
    }
}

package com.portraitsdk.demo.core

import kotlin.math.floor

/** A single-channel float map, row-major. */
class FloatMap(val width: Int, val height: Int, val values: FloatArray) {
    init {
        require(values.size == width * height) { "$width x $height map with ${values.size} values" }
    }

    operator fun get(x: Int, y: Int): Float = values[y * width + x]

    /** The rows and columns of [box]. */
    fun crop(box: Box): FloatMap =
        FloatMap(box.width, box.height, FloatArray(box.width * box.height) { this[box.left + it % box.width, box.top + it / box.width] })
}

/** Source index and weight of the next pixel for one output coordinate, as OpenCV's INTER_LINEAR computes it. */
private fun linearTaps(source: Int, target: Int): List<Pair<Int, Float>> {
    val scale = source.toDouble() / target
    return List(target) { d ->
        val f = ((d + 0.5) * scale - 0.5).toFloat()
        val s = floor(f).toInt()
        when {
            s < 0 -> 0 to 0f
            s >= source - 1 -> source - 1 to 0f
            else -> s to f - s
        }
    }
}

/** Bilinear resize with half-pixel centres and clamped borders: `cv2.resize(..., INTER_LINEAR)` on float32. */
fun FloatMap.resized(newWidth: Int, newHeight: Int): FloatMap {
    if (newWidth == width && newHeight == height) return this
    val xs = linearTaps(width, newWidth)
    val ys = linearTaps(height, newHeight)
    val out = FloatArray(newWidth * newHeight)
    for ((y, tapY) in ys.withIndex()) {
        val (sy, fy) = tapY
        val sy1 = minOf(sy + 1, height - 1)
        for ((x, tapX) in xs.withIndex()) {
            val (sx, fx) = tapX
            val sx1 = minOf(sx + 1, width - 1)
            val top = this[sx, sy] * (1f - fx) + this[sx1, sy] * fx
            val bottom = this[sx, sy1] * (1f - fx) + this[sx1, sy1] * fx
            out[y * newWidth + x] = top * (1f - fy) + bottom * fy
        }
    }
    return FloatMap(newWidth, newHeight, out)
}

/** The runtime's `Segmenter.postprocess`: the model-grid mask cut to the frame's [box], resized to the frame. */
fun toFrame(prob: FloatMap, box: Box, frame: Size): FloatMap = prob.crop(box).resized(frame.width, frame.height)

/**
 * The foreground probability from a model output of shape (h, w, channels): channel [foreground] of a softmax,
 * the only channel of a sigmoid; clamped to [0, 1] as the runtime does.
 */
fun foreground(output: FloatArray, width: Int, height: Int, channels: Int, foreground: Int): FloatMap {
    require(output.size == width * height * channels) { "output of ${output.size} values is not $width x $height x $channels" }
    val channel = if (channels > 1) foreground else 0
    return FloatMap(width, height, FloatArray(width * height) { output[it * channels + channel].coerceIn(0f, 1f) })
}

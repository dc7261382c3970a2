package com.portraitsdk.demo.core

import kotlin.math.ln

/** Temporal smoothing of masks across frames, as the runtime's `portrait_sdk/runtime/temporal.py`. */
enum class SmoothingMode { NONE, UNCERTAINTY, EMA }

private val LN2 = ln(2.0f)

/**
 * MediaPipe's hair-segmentation blend: confident pixels follow the new probability [p], uncertain ones keep
 * [prev]. `u = 1 - H2(p)` clamped to [0, 1], `u <- 1 - (1 - u)^2`, `m = u p + (1 - u) prev`, out
 * `ratio m + (1 - ratio) p`.
 */
fun uncertaintyBlend(p: FloatArray, prev: FloatArray, ratio: Float = 0.9f, eps: Float = 1e-3f): FloatArray {
    require(p.size == prev.size) { "masks of ${p.size} and ${prev.size} values" }
    return FloatArray(p.size) { i ->
        val x = p[i]
        val entropy = -(x * ln(x + eps) + (1f - x) * ln(1f - x + eps)) / LN2
        var u = (1f - entropy).coerceIn(0f, 1f)
        u *= 2f - u
        val mixed = u * x + (1f - u) * prev[i]
        ratio * mixed + (1f - ratio) * x
    }
}

/** Exponential moving average: `alpha p + (1 - alpha) prev`. */
fun emaBlend(p: FloatArray, prev: FloatArray, alpha: Float): FloatArray {
    require(p.size == prev.size) { "masks of ${p.size} and ${prev.size} values" }
    return FloatArray(p.size) { i -> alpha * p[i] + (1f - alpha) * prev[i] }
}

/** The blend a video stream applies; the first frame ([prev] null) passes through. */
data class Smoothing(val mode: SmoothingMode, val alpha: Float = 0.5f, val ratio: Float = 0.9f) {
    fun apply(p: FloatArray, prev: FloatArray?): FloatArray = when {
        prev == null || prev.size != p.size || mode == SmoothingMode.NONE -> p
        mode == SmoothingMode.EMA -> emaBlend(p, prev, alpha)
        else -> uncertaintyBlend(p, prev, ratio)
    }
}

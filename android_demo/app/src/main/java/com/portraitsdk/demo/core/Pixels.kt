package com.portraitsdk.demo.core

import kotlin.math.round

/*
 * The per-pixel effects of portrait_sdk/effects.py on ARGB pixels (Android's Bitmap.getPixels layout), with
 * OpenCV's integer rounding: blendLinear's saturate_cast, transform's 10-bit fixed point, RGB2GRAY's 15-bit
 * weights. A mask (FloatMap) has the frame's size. Background blur is drawn by the app (a scaled-down bitmap);
 * only its compositing is here.
 */

/** An opaque ARGB pixel from RGB values in 0..255. */
fun argb(red: Int, green: Int, blue: Int): Int = (0xFF shl 24) or (red shl 16) or (green shl 8) or blue

private fun Int.channel(shift: Int): Int = (this shr shift) and 0xFF

private val SHIFTS = intArrayOf(16, 8, 0)

private fun saturate(value: Float): Int = round(value).toInt().coerceIn(0, 255)

private fun checkSizes(pixels: IntArray, alpha: FloatMap) =
    require(pixels.size == alpha.values.size) { "${pixels.size} pixels but a mask of ${alpha.values.size}" }

/** One pixel of `effects.composite`: `fg * a + bg * (1 - a)`, as cv2.blendLinear rounds it. */
fun blend(foreground: Int, background: Int, a: Float): Int {
    val b = 1f - a
    val c = IntArray(3) { saturate((foreground.channel(SHIFTS[it]) * a + background.channel(SHIFTS[it]) * b) / (a + b + 1e-5f)) }
    return argb(c[0], c[1], c[2])
}

/** `effects.composite` over whole frames. */
fun composite(foreground: IntArray, background: IntArray, alpha: FloatMap): IntArray {
    checkSizes(foreground, alpha)
    require(background.size == foreground.size) { "background of ${background.size} pixels for ${foreground.size}" }
    return IntArray(foreground.size) { blend(foreground[it], background[it], alpha.values[it]) }
}

/** `effects.matte_view`: the mask as grey pixels, white = foreground. */
fun matte(alpha: FloatMap): IntArray = IntArray(alpha.values.size) {
    val grey = round(alpha.values[it] * 255f).toInt()
    argb(grey, grey, grey)
}

private const val FIXED_BITS = 10

/** `cv2.transform` of one pixel by a 3x4 matrix (rows R, G, B), in OpenCV's 10-bit fixed point. */
private fun transform(pixel: Int, matrix: Array<FloatArray>): Int {
    val scale = (1 shl FIXED_BITS).toFloat()
    val out =
        IntArray(3) { row ->
            val m = IntArray(4) { round(matrix[row][it] * scale).toInt() }
            val sum = m[0] * pixel.channel(16) + m[1] * pixel.channel(8) + m[2] * pixel.channel(0) + m[3]
            ((sum + (1 shl (FIXED_BITS - 1))) shr FIXED_BITS).coerceIn(0, 255)
        }
    return argb(out[0], out[1], out[2])
}

// ITU-R BT.601 luma weights (effects._LUMA) and OpenCV's RGB2GRAY integer weights (15 bits).
private val LUMA = floatArrayOf(0.299f, 0.587f, 0.114f)

private fun grey(pixel: Int): Int = (pixel.channel(16) * 9798 + pixel.channel(8) * 19235 + pixel.channel(0) * 3735 + (1 shl 14)) shr 15

/** `effects.recolor_hair`: luminance kept, chroma replaced by [color]'s, blended by `alpha * strength`. */
fun recolorHair(pixels: IntArray, alpha: FloatMap, color: Int, strength: Float): IntArray {
    checkSizes(pixels, alpha)
    val rgb = FloatArray(3) { color.channel(SHIFTS[it]).toFloat() }
    val luma = LUMA[0] * rgb[0] + LUMA[1] * rgb[1] + LUMA[2] * rgb[2]
    val dye = Array(3) { floatArrayOf(LUMA[0], LUMA[1], LUMA[2], rgb[it] - luma) }
    return IntArray(pixels.size) {
        val weight = alpha.values[it] * strength
        if (weight > 0f) blend(transform(pixels[it], dye), pixels[it], weight) else pixels[it]
    }
}

/** `effects.paint_nails` without gloss: [color] shaded by each pixel's luminance relative to the nails' mean. */
fun paintNails(pixels: IntArray, alpha: FloatMap, color: Int): IntArray {
    checkSizes(pixels, alpha)
    var weighted = 0f
    var total = 0f
    for (i in pixels.indices) {
        weighted += grey(pixels[i]) * alpha.values[i]
        total += alpha.values[i]
    }
    if (total <= 0f) return pixels.copyOf()
    val meanLuma = maxOf(weighted / total, 1f)
    val paint = Array(3) { row -> FloatArray(4) { if (it < 3) color.channel(SHIFTS[row]) / meanLuma * LUMA[it] else 0f } }
    return IntArray(pixels.size) {
        val weight = alpha.values[it]
        if (weight > 0f) blend(transform(pixels[it], paint), pixels[it], weight) else pixels[it]
    }
}

/** `effects.gradient_background`: the built-in replacement background, teal at the top left to violet. */
fun gradientBackground(width: Int, height: Int): IntArray {
    val top = floatArrayOf(40f, 140f, 150f)
    val bottom = floatArrayOf(90f, 50f, 130f)
    fun step(i: Int, n: Int) = if (n > 1) i.toDouble() / (n - 1) else 0.0
    return IntArray(width * height) {
        val t = step(it % width, width) * 0.6 + step(it / width, height) * 0.4
        val c = IntArray(3) { k -> round(top[k] * (1 - t) + bottom[k] * t).toInt() }
        argb(c[0], c[1], c[2])
    }
}

package com.portraitsdk.demo

import android.graphics.Bitmap
import com.portraitsdk.demo.core.Effect
import com.portraitsdk.demo.core.argb
import com.portraitsdk.demo.core.composite
import com.portraitsdk.demo.core.gradientBackground
import com.portraitsdk.demo.core.matte
import com.portraitsdk.demo.core.paintNails
import com.portraitsdk.demo.core.recolorHair
import kotlin.math.max
import kotlin.math.roundToInt

/** Draws an [Effect] of a [Segmentation] into a new bitmap, with the per-pixel maths of the core package. */
object EffectRenderer {
    private val HAIR_COLOR = argb(150, 40, 60)
    private val NAIL_COLOR = argb(200, 20, 60)
    private const val HAIR_STRENGTH = 0.8f

    // effects.MAX_BLUR_SIGMA at strength 0.5: the frame is blurred by scaling it down this far and back up.
    private const val BLUR_FRACTION = 0.5f / 24f

    fun render(effect: Effect, result: Segmentation): Bitmap {
        val frame = result.frame
        val width = frame.width
        val height = frame.height
        val pixels = IntArray(width * height).also { frame.getPixels(it, 0, width, 0, 0, width, height) }
        val out =
            when (effect) {
                Effect.BLUR -> composite(pixels, blurred(frame), result.mask)
                Effect.REPLACE -> composite(pixels, gradientBackground(width, height), result.mask)
                Effect.MATTE -> matte(result.mask)
                Effect.HAIR_COLOR -> recolorHair(pixels, result.mask, HAIR_COLOR, HAIR_STRENGTH)
                Effect.NAILS -> paintNails(pixels, result.mask, NAIL_COLOR)
            }
        return Bitmap.createBitmap(out, width, height, Bitmap.Config.ARGB_8888)
    }

    /** A cheap wide blur: down to about one pixel per blur radius with bilinear filtering, and back up. */
    private fun blurred(frame: Bitmap): IntArray {
        val factor = max(1f, BLUR_FRACTION * minOf(frame.width, frame.height))
        val small = Bitmap.createScaledBitmap(
            frame,
            max(1, (frame.width / factor).roundToInt()),
            max(1, (frame.height / factor).roundToInt()),
            true
        )
        val back = Bitmap.createScaledBitmap(small, frame.width, frame.height, true)
        return IntArray(frame.width * frame.height).also { back.getPixels(it, 0, frame.width, 0, 0, frame.width, frame.height) }
    }
}

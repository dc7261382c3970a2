package com.portraitsdk.demo.core

import kotlin.math.abs
import org.junit.Assert.assertEquals
import org.junit.Test

/** The app's maths against tests/vectors/mobile_logic.json, which the Python runtime computes. */
class VectorsTest {
    private val vectors = Fixtures.vectors

    private fun assertClose(expected: FloatArray, actual: FloatArray, tolerance: Float, what: String) {
        assertEquals("$what: size", expected.size, actual.size)
        val worst = expected.indices.maxOf { abs(expected[it] - actual[it]) }
        assert(worst <= tolerance) { "$what: largest difference $worst > $tolerance" }
    }

    @Test
    fun letterboxBoxesMatchTheRuntime() {
        val cases = vectors.getJSONArray("letterbox")
        for (i in 0 until cases.length()) {
            val case = cases.getJSONObject(i)
            val (fh, fw) = case.getJSONArray("frame_hw").ints()
            val (mh, mw) = case.getJSONArray("model_hw").ints()
            val (top, left, h, w) = case.getJSONArray("box").ints()
            assertEquals("frame $fh x $fw in $mh x $mw", Box(top, left, h, w), letterboxBox(fh, fw, mh, mw))
        }
    }

    @Test
    fun masksMapBackToTheFrameAsTheRuntimeDoes() {
        val cases = vectors.getJSONArray("postprocess")
        for (i in 0 until cases.length()) {
            val case = cases.getJSONObject(i)
            val (fh, fw) = case.getJSONArray("frame_hw").ints()
            val (mh, mw) = case.getJSONArray("model_hw").ints()
            val resize = ResizeMode.valueOf(case.getString("resize").uppercase())
            val box = placement(resize, Size(fw, fh), Size(mw, mh))
            val mask = toFrame(FloatMap(mw, mh, case.getJSONArray("prob").floats()), box, Size(fw, fh))
            assertClose(case.getJSONArray("mask").floats(), mask.values, 1e-5f, "postprocess case $i")
        }
    }

    @Test
    fun smoothingMatchesTheRuntime() {
        val s = vectors.getJSONObject("smoothing")
        val p = s.getJSONArray("p").floats()
        val prev = s.getJSONArray("prev").floats()
        val uncertainty = s.getJSONObject("uncertainty")
        val ema = s.getJSONObject("ema")
        val ratio = uncertainty.getDouble("ratio").toFloat()
        assertClose(uncertainty.getJSONArray("out").floats(), uncertaintyBlend(p, prev, ratio), 1e-5f, "uncertainty")
        assertClose(ema.getJSONArray("out").floats(), emaBlend(p, prev, ema.getDouble("alpha").toFloat()), 1e-6f, "ema")
        assertClose(
            uncertainty.getJSONArray("out").floats(),
            Smoothing(SmoothingMode.UNCERTAINTY, ratio = ratio).apply(p, prev),
            1e-5f,
            "mode"
        )
        assertEquals(p, Smoothing(SmoothingMode.EMA).apply(p, null))
    }

    private val pixels = vectors.getJSONObject("pixels")
    private val frame = pixels.getJSONArray("frame").ints().toPixels()
    private val alpha = FloatMap(pixels.getInt("width"), pixels.getInt("height"), pixels.getJSONArray("alpha").floats())

    private fun expected(key: String) = pixels.getJSONArray(key).ints().toPixels().toList()

    private fun color(effect: String) = pixels.getJSONObject(effect).getJSONArray("color").ints().let { argb(it[0], it[1], it[2]) }

    @Test
    fun compositeAndMatteMatchTheEffects() {
        val background = pixels.getJSONArray("background").ints().toPixels()
        assertEquals(expected("composite"), composite(frame, background, alpha).toList())
        assertEquals(expected("matte"), matte(alpha).toList())
        assertEquals(expected("gradient"), gradientBackground(alpha.width, alpha.height).toList())
    }

    @Test
    fun hairColourMatchesTheEffects() {
        val hair = pixels.getJSONObject("hair_color")
        val out = recolorHair(frame, alpha, color("hair_color"), hair.getDouble("strength").toFloat())
        assertEquals(hair.getJSONArray("out").ints().toPixels().toList(), out.toList())
    }

    @Test
    fun nailPolishMatchesTheEffects() {
        val out = paintNails(frame, alpha, color("nails"))
        assertEquals(pixels.getJSONObject("nails").getJSONArray("out").ints().toPixels().toList(), out.toList())
    }

    @Test
    fun effectTableMatchesTheEffects() {
        val table = vectors.getJSONObject("effects")
        assertEquals(table.keySet(), Effect.entries.map { it.id }.toSet())
        for (effect in Effect.entries) assertEquals(effect.id, table.getJSONArray(effect.id).strings().toSet(), effect.tasks)
    }
}

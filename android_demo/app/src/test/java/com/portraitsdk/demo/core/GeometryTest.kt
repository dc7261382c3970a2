package com.portraitsdk.demo.core

import org.junit.Assert.assertEquals
import org.junit.Test

class GeometryTest {
    @Test
    fun canvasHasTheModelsAspectAndHoldsTheFrame() {
        for ((frame, model) in listOf(
            Size(640, 480) to Size(224, 224),
            Size(480, 640) to Size(256, 256),
            Size(1920, 1080) to Size(144, 256)
        )) {
            val (canvas, box) = letterboxCanvas(frame, model)
            assertEquals(canvas.width.toDouble() / canvas.height, model.width.toDouble() / model.height, 0.01)
            assertEquals(Box((canvas.height - frame.height) / 2, (canvas.width - frame.width) / 2, frame.height, frame.width), box)
            // MediaPipe stretching the canvas to the model puts the frame where the runtime's letterbox does
            val scaled = letterboxBox(frame.height, frame.width, model.height, model.width)
            assertEquals(scaled.top.toDouble(), box.top * model.height.toDouble() / canvas.height, 1.0)
        }
    }

    @Test
    fun uprightRotationFollowsCamera2() {
        assertEquals(90, uprightRotation(90, 0, frontFacing = false))
        assertEquals(0, uprightRotation(90, 90, frontFacing = false))
        assertEquals(270, uprightRotation(270, 0, frontFacing = true))
        assertEquals(0, uprightRotation(270, 90, frontFacing = true))
        assertEquals(Size(480, 640), rotatedSize(Size(640, 480), 270))
        assertEquals(Size(640, 480), rotatedSize(Size(640, 480), 180))
    }

    @Test
    fun foregroundPicksTheCardsChannel() {
        val softmax = floatArrayOf(0.9f, 0.1f, 0.2f, 0.8f)
        assertEquals(listOf(0.1f, 0.8f), foreground(softmax, 2, 1, 2, 1).values.toList())
        assertEquals(listOf(0f, 1f), foreground(floatArrayOf(-0.0001f, 1.0002f), 2, 1, 1, 0).values.toList())
    }
}

class YuvTest {
    @Test
    fun greyStaysGreyAndChromaShiftsColour() {
        val y = Plane(byteArrayOf(100, 100, 100, 100), 2, 1)
        val neutral = Plane(byteArrayOf(128.toByte()), 1, 1)
        assertEquals(List(4) { argb(100, 100, 100) }, yuvToArgb(y, neutral, neutral, 2, 2).toList())
        val red = yuvToArgb(y, neutral, Plane(byteArrayOf(228.toByte()), 1, 1), 2, 2)[3]
        assertEquals(argb(240, 28, 100), red)
    }
}

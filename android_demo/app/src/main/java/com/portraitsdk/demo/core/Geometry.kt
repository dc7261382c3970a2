package com.portraitsdk.demo.core

import kotlin.math.max
import kotlin.math.min
import kotlin.math.round

/** Where a frame lands inside the model's input: rows `top until top + height`, columns `left until left + width`. */
data class Box(val top: Int, val left: Int, val height: Int, val width: Int)

/** A size in pixels. */
data class Size(val width: Int, val height: Int)

/**
 * `portrait_sdk.preprocess.fit_box` (letterbox): the frame scaled with its aspect kept and
 * centred in the model's input.
 * Rounds half to even (kotlin.math.round), as Python's `round`.
 */
fun letterboxBox(frameHeight: Int, frameWidth: Int, modelHeight: Int, modelWidth: Int): Box {
    val scale = min(modelHeight.toDouble() / frameHeight, modelWidth.toDouble() / frameWidth)
    val height = min(modelHeight, max(1, round(frameHeight * scale).toInt()))
    val width = min(modelWidth, max(1, round(frameWidth * scale).toInt()))
    return Box((modelHeight - height) / 2, (modelWidth - width) / 2, height, width)
}

/** The frame's placement in the model's input for the card's resize mode (stretch fills the whole input). */
fun placement(resize: ResizeMode, frame: Size, model: Size): Box = when (resize) {
    ResizeMode.LETTERBOX -> letterboxBox(frame.height, frame.width, model.height, model.width)
    ResizeMode.STRETCH -> Box(0, 0, model.height, model.width)
}

/**
 * The canvas a letterboxed frame is padded to before MediaPipe stretches it to the model's input: the model's
 * aspect ratio at the frame's scale. The box is where the frame sits in it (and where its mask is cut out).
 */
fun letterboxCanvas(frame: Size, model: Size): Pair<Size, Box> {
    val wider = frame.width.toLong() * model.height >= frame.height.toLong() * model.width
    val canvas =
        if (wider) {
            Size(frame.width, max(frame.height, round(frame.width.toDouble() * model.height / model.width).toInt()))
        } else {
            Size(max(frame.width, round(frame.height.toDouble() * model.width / model.height).toInt()), frame.height)
        }
    val box = Box((canvas.height - frame.height) / 2, (canvas.width - frame.width) / 2, frame.height, frame.width)
    return canvas to box
}

/**
 * Clockwise rotation, in degrees, that turns a camera frame upright on the screen (Camera2's
 * `SENSOR_ORIENTATION` and the display rotation); a front camera's image is mirrored, so its angles add.
 */
fun uprightRotation(sensorOrientation: Int, displayRotation: Int, frontFacing: Boolean): Int {
    require(sensorOrientation % 90 == 0 && displayRotation % 90 == 0) { "rotations come in steps of 90 degrees" }
    val degrees = if (frontFacing) sensorOrientation + displayRotation else sensorOrientation - displayRotation
    return ((degrees % 360) + 360) % 360
}

/** The size of an image after a rotation by [degrees] (a multiple of 90). */
fun rotatedSize(size: Size, degrees: Int): Size = if (degrees % 180 == 0) size else Size(size.height, size.width)

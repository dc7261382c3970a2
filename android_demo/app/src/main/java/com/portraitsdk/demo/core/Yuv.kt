package com.portraitsdk.demo.core

/** One plane of a Camera2 `YUV_420_888` image: its bytes with the row and pixel strides. */
class Plane(val bytes: ByteArray, val rowStride: Int, val pixelStride: Int)

/**
 * `YUV_420_888` (full-range BT.601, as Camera2 delivers JPEG-range frames) to ARGB pixels, row-major
 * [width] x [height]. The chroma planes are subsampled 2x2.
 */
fun yuvToArgb(y: Plane, u: Plane, v: Plane, width: Int, height: Int): IntArray {
    val out = IntArray(width * height)
    for (row in 0 until height) {
        for (col in 0 until width) {
            val luma = y.bytes[row * y.rowStride + col * y.pixelStride].toInt() and 0xFF
            val chroma = (row / 2) to (col / 2)
            val cb = (u.bytes[chroma.first * u.rowStride + chroma.second * u.pixelStride].toInt() and 0xFF) - 128
            val cr = (v.bytes[chroma.first * v.rowStride + chroma.second * v.pixelStride].toInt() and 0xFF) - 128
            out[row * width + col] =
                argb(
                    (luma + 1.402f * cr).toInt().coerceIn(0, 255),
                    (luma - 0.344136f * cb - 0.714136f * cr).toInt().coerceIn(0, 255),
                    (luma + 1.772f * cb).toInt().coerceIn(0, 255)
                )
        }
    }
    return out
}

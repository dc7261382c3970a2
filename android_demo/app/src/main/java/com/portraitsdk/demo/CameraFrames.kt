package com.portraitsdk.demo

import android.annotation.SuppressLint
import android.content.Context
import android.graphics.Bitmap
import android.graphics.ImageFormat
import android.graphics.Matrix
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.media.ImageReader
import android.os.Handler
import android.os.HandlerThread
import com.portraitsdk.demo.core.Plane
import com.portraitsdk.demo.core.uprightRotation
import com.portraitsdk.demo.core.yuvToArgb

/**
 * Camera2 frames (no CameraX: it is on Google's Maven only) as upright ARGB bitmaps, front camera first, mirrored
 * like a mirror. Frames arrive on the camera's own thread; a frame that comes while the previous one is still
 * being processed is dropped by the caller.
 */
class CameraFrames(
    private val context: Context,
    private val displayRotation: () -> Int,
    private val onFrame: (Bitmap) -> Unit,
    private val onError: (String) -> Unit
) : AutoCloseable {
    private val thread = HandlerThread("camera").apply { start() }
    private val handler = Handler(thread.looper)
    private val reader = ImageReader.newInstance(WIDTH, HEIGHT, ImageFormat.YUV_420_888, 2)
    private var camera: CameraDevice? = null

    /** Opens the camera; the CAMERA permission must have been granted. */
    @SuppressLint("MissingPermission")
    fun start() {
        val manager = context.getSystemService(CameraManager::class.java)
        val id = manager.cameraIdList.sortedBy {
            manager.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) !=
                CameraCharacteristics.LENS_FACING_FRONT
        }.firstOrNull()
        if (id == null) {
            onError("no camera on this device")
            return
        }
        val characteristics = manager.getCameraCharacteristics(id)
        val front = characteristics.get(CameraCharacteristics.LENS_FACING) == CameraCharacteristics.LENS_FACING_FRONT
        val sensor = characteristics.get(CameraCharacteristics.SENSOR_ORIENTATION) ?: 0
        reader.setOnImageAvailableListener({ r ->
            r.acquireLatestImage()?.use { image ->
                val planes = image.planes.map { p ->
                    Plane(ByteArray(p.buffer.remaining()).also { p.buffer.get(it) }, p.rowStride, p.pixelStride)
                }
                val pixels = yuvToArgb(planes[0], planes[1], planes[2], image.width, image.height)
                val raw = Bitmap.createBitmap(pixels, image.width, image.height, Bitmap.Config.ARGB_8888)
                val matrix = Matrix().apply {
                    postRotate(uprightRotation(sensor, displayRotation(), front).toFloat())
                    if (front) postScale(-1f, 1f)
                }
                onFrame(Bitmap.createBitmap(raw, 0, 0, raw.width, raw.height, matrix, true))
            }
        }, handler)
        manager.openCamera(
            id,
            object : CameraDevice.StateCallback() {
                override fun onOpened(device: CameraDevice) {
                    camera = device
                    startSession(device)
                }

                override fun onDisconnected(device: CameraDevice) = device.close()

                override fun onError(device: CameraDevice, error: Int) {
                    device.close()
                    onError("camera error $error")
                }
            },
            handler
        )
    }

    @Suppress("DEPRECATION") // the List<Surface> form is the one available from API 24
    private fun startSession(device: CameraDevice) {
        device.createCaptureSession(
            listOf(reader.surface),
            object : CameraCaptureSession.StateCallback() {
                override fun onConfigured(session: CameraCaptureSession) {
                    val request = device.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW).apply { addTarget(reader.surface) }
                    session.setRepeatingRequest(request.build(), null, handler)
                }

                override fun onConfigureFailed(session: CameraCaptureSession) = onError("the camera refused the capture session")
            },
            handler
        )
    }

    override fun close() {
        camera?.close()
        reader.close()
        thread.quitSafely()
    }

    private companion object {
        const val WIDTH = 640
        const val HEIGHT = 480
    }
}

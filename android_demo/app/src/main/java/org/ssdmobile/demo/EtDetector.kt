package org.ssdmobile.demo

import android.graphics.Bitmap
import android.os.SystemClock
import org.pytorch.executorch.DType
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.ssdmobile.postprocess.FrameResult
import org.ssdmobile.postprocess.Postprocessor
import org.ssdmobile.postprocess.Preprocessor
import org.ssdmobile.postprocess.RuntimeTensors
import org.ssdmobile.postprocess.Sidecar
import java.io.Closeable

/**
 * One ExecuTorch program and its sidecar: bitmap -> input tensor (Preprocessor) -> forward ->
 * detections (Postprocessor: decode + per-class NMS, or the graph's own NMS rows). Everything
 * model-specific comes from the sidecar; everything but the Bitmap and ExecuTorch calls is the
 * unit-tested plain-Kotlin module (android_demo/postprocess).
 */
class EtDetector(val sidecar: Sidecar, modelPath: String, val threads: Int = 0) : Closeable {
    // threads 0: ExecuTorch's default for the hardware
    private val module: Module = Module.load(modelPath, Module.LOAD_MODE_FILE, threads)
    private val preprocessor = Preprocessor(sidecar)
    private val postprocessor = Postprocessor(sidecar)
    private val inputShape = RuntimeTensors.inputShape(sidecar)
    private val uint8Input = RuntimeTensors.isUint8Input(sidecar)

    init {
        module.loadMethod("forward") // load now, not in the first timed call
    }

    fun preprocess(bitmap: Bitmap): FloatArray {
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return preprocessor.run(pixels, bitmap.width, bitmap.height)
    }

    /** The artifact's forward on a preprocessed input; outputs as float arrays in sidecar order. */
    fun forward(input: FloatArray): List<FloatArray> {
        val tensor = if (uint8Input) Tensor.fromBlobUnsigned(RuntimeTensors.toUint8(input), inputShape)
        else Tensor.fromBlob(input, inputShape)
        val outputs = module.forward(EValue.from(tensor))
        return RuntimeTensors.outputs(sidecar, outputs.map { data(it.toTensor()) })
    }

    /** A tensor's data as the array of its dtype (RuntimeTensors converts it). */
    private fun data(t: Tensor): Any = when (t.dtype()) {
        DType.FLOAT -> t.dataAsFloatArray
        DType.INT64 -> t.dataAsLongArray
        DType.INT32 -> t.dataAsIntArray
        else -> throw IllegalStateException("output dtype ${t.dtype()} is not one this app reads")
    }

    fun detect(bitmap: Bitmap): FrameResult {
        val t0 = SystemClock.elapsedRealtimeNanos()
        val input = preprocess(bitmap)
        val t1 = SystemClock.elapsedRealtimeNanos()
        val outputs = forward(input)
        val t2 = SystemClock.elapsedRealtimeNanos()
        val detections = postprocessor.run(outputs)
        val t3 = SystemClock.elapsedRealtimeNanos()
        return FrameResult(detections, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, bitmap.width, bitmap.height)
    }

    override fun close() = module.destroy()
}

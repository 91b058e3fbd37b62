package org.ssdmobile.postprocess

/**
 * Between the module's float arrays and a runtime's tensors, free of the runtime: the input's
 * shape and bytes as the sidecar says, and the outputs (float32, int64, int32 tensors' data) as
 * the flat float arrays [Postprocessor] and [DriftCheck] read, in the sidecar's order.
 */
object RuntimeTensors {
    fun inputShape(sidecar: Sidecar): LongArray = LongArray(sidecar.input.shape.size) { sidecar.input.shape[it].toLong() }

    /** uint8 inputs: normalization is in the graph, the app gives it resized 0..255 pixels. */
    fun isUint8Input(sidecar: Sidecar): Boolean = sidecar.input.dtype == "uint8"

    /**
     * Resized 0..255 pixel values ([Preprocessor] with a uint8 input) -> the bytes of a uint8
     * tensor: rounded half to even and clamped, as the Python side makes uint8 inputs
     * (torch round().clamp(0, 255)).
     */
    fun toUint8(values: FloatArray): ByteArray = ByteArray(values.size) {
        val v = Math.rint(values[it].toDouble())
        (if (v < 0.0) 0 else if (v > 255.0) 255 else v.toInt()).toByte()
    }

    /** One output tensor's data (FloatArray, LongArray, IntArray) as floats; label ids and counts convert exactly. */
    fun toFloats(data: Any, what: String = "output"): FloatArray = when (data) {
        is FloatArray -> data
        is LongArray -> FloatArray(data.size) { data[it].toFloat() }
        is IntArray -> FloatArray(data.size) { data[it].toFloat() }
        else -> throw IllegalArgumentException("$what: ${data.javaClass.simpleName} is not a tensor type this app reads " +
            "(float32, int64, int32)")
    }

    /** All of an artifact's outputs, one per sidecar output, in its order. */
    fun outputs(sidecar: Sidecar, data: List<Any>): List<FloatArray> {
        if (data.size != sidecar.outputs.size)
            throw IllegalArgumentException("the artifact returned ${data.size} outputs, its sidecar describes " +
                "${sidecar.outputs.size} (" + sidecar.outputs.joinToString { it.name } + ")")
        return data.mapIndexed { i, d -> toFloats(d, "output $i '${sidecar.outputs[i].name}'") }
    }
}

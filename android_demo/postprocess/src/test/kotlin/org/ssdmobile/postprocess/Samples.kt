package org.ssdmobile.postprocess

/** Small sidecars for the unit tests, built with the generated classes (the real ones come from test.sh's fixtures). */
object Samples {
    val RAW_OUTPUTS = listOf(
        OutputSpec(OutputNames.BOX_ENCODINGS, listOf(1, 2, 4), "float32", "encodings"),
        OutputSpec(OutputNames.CLASS_LOGITS, listOf(1, 2, 3), "float32", "logits"))

    val GRAPH_OUTPUTS = listOf(
        OutputSpec(OutputNames.BOXES, listOf(1, 3, 4), "float32", "xyxy"),
        OutputSpec(OutputNames.SCORES, listOf(1, 3), "float32", "descending"),
        OutputSpec(OutputNames.LABELS, listOf(1, 3), "int64", "ids"),
        OutputSpec(OutputNames.NUM_DETECTIONS, listOf(1), "int64", "valid rows"))

    /** A 2-anchor, 3-class (background, person, café "x") ExecuTorch sidecar, input 4x6. */
    fun sidecar(inGraph: Boolean = false, outputs: List<OutputSpec> = if (inGraph) GRAPH_OUTPUTS else RAW_OUTPUTS,
                layout: String = "NCHW", dtype: String = "float32", target: String = "executorch") = Sidecar(
        format = Sidecar.FORMAT,
        schemaVersion = Sidecar.VERSION,
        ssdmobileVersion = "0.1.0",
        model = "m",
        target = target,
        precision = "fp32",
        artifact = "m.pte",
        input = InputSpec("image", if (layout == "NHWC") listOf(1, 4, 6, 3) else listOf(1, 3, 4, 6), layout, dtype, "RGB"),
        preprocess = PreprocessSpec(listOf(4, 6), "bilinear", listOf(0.5, 0.5, 0.5), listOf(0.5, 0.5, 0.5), listOf(0, 255), false),
        classNames = listOf("__background__", "person", "caf\u00e9 \"x\""),
        backgroundClass = 0,
        outputs = outputs,
        decode = DecodeSpec("cxcywh_normalized", listOf(listOf(0.5, 0.5, 0.2, 0.2), listOf(0.25, 0.75, 0.1, 0.25)),
            BoxCoderSpec(listOf(10.0, 10.0, 5.0, 5.0), "xywh", null), "xyxy_normalized", "softmax"),
        nms = NmsSpec(inGraph, 0.55, 0.001, 300, null, 300),
        quantization = null,
        checkpoint = null,
        metrics = null)
}

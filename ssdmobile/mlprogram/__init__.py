"""A reference evaluator for the Core ML packages ssdmobile exports, on any OS.

Core ML's own `predict` exists only on macOS. An ML Program, though, is a typed op graph whose
ops are documented (coremltools' MIL op reference), and Core ML's NonMaximumSuppression model is
documented in its spec (NonMaximumSuppression.proto). This package reads a *saved* `.mlpackage`
(the Model.mil protobuf through coremltools' public proto classes, the weights from its
weight.bin) and evaluates it with numpy as those documents define each op, so an exported
artifact's numbers can be checked on Linux:

- `reader`: the package -> models (ML Program functions, NMS models, pipelines) and their values;
- `ops`: the op set, one numpy function per MIL op; every op's results are rounded to the dtype
  the program declares for them (fp16 programs compute in fp16);
- `nms`: Core ML's NonMaximumSuppression model as its spec documents it;
- `evaluate`: `load_package(path).predict(features)`.

It is a reference, not the Core ML runtime: it says what the program means, not how fast or how
exactly (accumulation order, fp16 accumulators on the GPU or Neural Engine) a device computes it.
It never borrows the exporter's code or assumptions (ssdmobile.export.coreml): what it knows
about a package is what the package says. An op outside its set is one line naming the op.
"""

from __future__ import annotations

from .errors import MLProgramError, UnsupportedOpError
from .evaluate import Package, load_package

__all__ = ["MLProgramError", "Package", "UnsupportedOpError", "load_package"]

"""Typed errors. Library code raises these with a message a user can act on; the CLI prints
the message as one line on stderr and exits non-zero (no traceback for user mistakes)."""


class SSDMobileError(Exception):
    """Base class of every error ssdmobile raises for bad input or a bad environment."""


class UnknownModelError(SSDMobileError):
    pass


class WeightsError(SSDMobileError):
    """A checkpoint is missing, unreachable, corrupt, or does not fit the model."""


class ImageError(SSDMobileError):
    """An image file is missing or cannot be decoded."""


class DatasetError(SSDMobileError):
    """An annotation file is malformed, references missing images, or the dataset is empty."""


class ExportError(SSDMobileError):
    """An export cannot be done as asked (unknown target or precision,
    a graph a runtime rejects...)."""


class PrecisionNotAvailable(ExportError):
    """The precision exists in ssdmobile but not (yet) for this target."""


class QuantizationError(SSDMobileError):
    """Quantization cannot be done as asked (bad observer, no calibration images...)."""


class ArtifactError(SSDMobileError):
    """An artifact is missing, truncated, not what its extension says,
    or does not match its sidecar."""


class RuntimeUnavailable(SSDMobileError):
    """The artifact's runtime cannot run on this machine (Core ML off macOS)."""

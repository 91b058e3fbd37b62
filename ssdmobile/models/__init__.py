from .registry import ModelEntry, create_model, get_entry, list_models, register_model

# importing the architectures registers them
from . import ssdlite_mobilenet_v3  # noqa: E402,F401

try:  # the TF-compatible SSDLite MobileNetV2 (person detector)
    from . import ssdlite_mobilenet_v2  # noqa: F401
except ImportError:  # pragma: no cover - only while that module is being written
    pass

__all__ = ["ModelEntry", "create_model", "get_entry", "list_models", "register_model"]

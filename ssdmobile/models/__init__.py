from .registry import ModelEntry, create_model, get_entry, list_models, register_model

# importing the architectures registers them
from . import ssdlite_mobilenet_v2, ssdlite_mobilenet_v3  # noqa: E402,F401

__all__ = ["ModelEntry", "create_model", "get_entry", "list_models", "register_model"]

# importing the architectures registers them
from . import dssd, person, ssd_resnet50, ssd_vgg16, ssdlite_mobilenet_v3  # noqa: F401
from .registry import ModelEntry, create_model, get_entry, list_models, register_model
from .weights import LoadedWeights, Weights

__all__ = [
    "LoadedWeights",
    "ModelEntry",
    "Weights",
    "create_model",
    "get_entry",
    "list_models",
    "register_model",
]

from .coco import CocoDataset, Sample
from .images import load_image
from .voc import VocDataset, open_dataset, voc_to_coco

__all__ = ["CocoDataset", "Sample", "VocDataset", "load_image", "open_dataset", "voc_to_coco"]

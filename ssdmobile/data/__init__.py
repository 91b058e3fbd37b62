from .coco import CocoDataset, Sample, image_digests, refuse_shared_images
from .images import image_files, load_image
from .voc import VocDataset, open_dataset, voc_to_coco

__all__ = [
    "CocoDataset",
    "Sample",
    "VocDataset",
    "image_digests",
    "image_files",
    "load_image",
    "open_dataset",
    "refuse_shared_images",
    "voc_to_coco",
]

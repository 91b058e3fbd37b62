from .coco import CocoDataset, Sample, image_digests, refuse_shared_images
from .images import image_files, load_image, refuse_undecodable, undecodable
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
    "refuse_undecodable",
    "undecodable",
    "voc_to_coco",
]

"""Long-tailed data: sources, LT selection, samplers and the two loading paths."""

from lcreg.data.datasets import LongTailData, build_dataset, uses_device_loader
from lcreg.data.images import ImageSet
from lcreg.data.loaders import DeviceLoader, worker_loader
from lcreg.data.longtail import class_counts_profile, make_longtail_indices, select_longtail, shot_splits
from lcreg.data.samplers import (
    ClassBalancedSampler,
    InstanceSampler,
    ProgressiveSampler,
    WeightedClassSampler,
    create_sampler,
)

__all__ = [
    "LongTailData",
    "build_dataset",
    "uses_device_loader",
    "ImageSet",
    "DeviceLoader",
    "worker_loader",
    "class_counts_profile",
    "make_longtail_indices",
    "select_longtail",
    "shot_splits",
    "ClassBalancedSampler",
    "InstanceSampler",
    "ProgressiveSampler",
    "WeightedClassSampler",
    "create_sampler",
]

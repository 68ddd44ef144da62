"""Index samplers for long-tailed training, all DDP-ready.

Each sampler draws one epoch's global index sequence from a generator seeded by
(seed, epoch), so every rank draws the same sequence and keeps its own stride of it
(``rank::num_replicas``). Call ``set_epoch`` before each epoch, as with
``DistributedSampler``.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from lcreg.registry import SAMPLERS


class _EpochSampler(Sampler[int]):
    def __init__(
        self,
        targets: Sequence[int],
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.targets = np.asarray(targets, dtype=np.int64)
        self.num_classes = int(self.targets.max()) + 1 if len(self.targets) else 0
        self.total = len(self.targets) if num_samples is None else num_samples
        self.seed, self.epoch = seed, 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def global_indices(self) -> np.ndarray:  # one epoch, all ranks
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        idx = self.global_indices()
        per_rank = math.ceil(len(idx) / self.num_replicas)
        idx = np.resize(idx, per_rank * self.num_replicas)  # pad by wrapping, as DistributedSampler
        return iter(idx[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return math.ceil(self.total / self.num_replicas)


class InstanceSampler(_EpochSampler):
    """Every image once per epoch, in a random order."""

    def global_indices(self) -> np.ndarray:
        return self._generator().permutation(len(self.targets))


class ClassBalancedSampler(_EpochSampler):
    """MiSLAS / classifier-balancing ``ClassAwareSampler``: classes are visited in a
    random order (reshuffled after each pass over all classes), and each visit yields
    ``samples_per_class`` consecutive images of that class, drawn from a per-class
    shuffled cycle. An epoch holds as many images as the long-tailed set."""

    def __init__(self, targets: Sequence[int], samples_per_class: int = 4, **kw) -> None:
        super().__init__(targets, **kw)
        self.samples_per_class = samples_per_class

    def global_indices(self) -> np.ndarray:
        rng = self._generator()
        by_class = [np.where(self.targets == c)[0] for c in range(self.num_classes)]
        present = [c for c in range(self.num_classes) if len(by_class[c])]
        pools = {c: rng.permutation(by_class[c]) for c in present}
        cursor = {c: 0 for c in present}
        out: list[int] = []
        class_order: list[int] = []
        while len(out) < self.total:
            if not class_order:
                class_order = rng.permutation(present).tolist()
            c = class_order.pop()
            for _ in range(self.samples_per_class):
                if cursor[c] == len(pools[c]):
                    pools[c], cursor[c] = rng.permutation(by_class[c]), 0
                out.append(int(pools[c][cursor[c]]))
                cursor[c] += 1
        return np.asarray(out[: self.total], dtype=np.int64)


class WeightedClassSampler(_EpochSampler):
    """Draws images with class probabilities p_c proportional to n_c^q (with replacement):
    q = 1 instance-like, q = 0.5 square-root, q = 0 class-balanced."""

    def __init__(self, targets: Sequence[int], q: float = 0.5, **kw) -> None:
        super().__init__(targets, **kw)
        self.q = q

    def class_probabilities(self) -> np.ndarray:
        counts = np.bincount(self.targets, minlength=self.num_classes).astype(np.float64)
        p = np.where(counts > 0, counts**self.q, 0.0)
        return p / p.sum()

    def global_indices(self) -> np.ndarray:
        counts = np.bincount(self.targets, minlength=self.num_classes)
        per_image = self.class_probabilities()[self.targets] / counts[self.targets]
        return self._generator().choice(len(self.targets), size=self.total, replace=True, p=per_image)


class ProgressiveSampler(WeightedClassSampler):
    """Progressively balanced (Kang et al. 2020): p = (1 - t/T) p_instance + (t/T) p_balanced."""

    def __init__(self, targets: Sequence[int], total_epochs: int = 1, **kw) -> None:
        super().__init__(targets, q=1.0, **kw)
        self.total_epochs = max(total_epochs, 1)

    def class_probabilities(self) -> np.ndarray:
        counts = np.bincount(self.targets, minlength=self.num_classes).astype(np.float64)
        instance = counts / counts.sum()
        balanced = (counts > 0) / (counts > 0).sum()
        t = min(self.epoch / self.total_epochs, 1.0)
        return (1 - t) * instance + t * balanced


SAMPLERS.register("instance")(lambda targets, total_epochs, **kw: InstanceSampler(targets, **kw))
SAMPLERS.register("class_balanced")(lambda targets, total_epochs, **kw: ClassBalancedSampler(targets, **kw))
SAMPLERS.register("sqrt")(lambda targets, total_epochs, **kw: WeightedClassSampler(targets, q=0.5, **kw))
SAMPLERS.register("progressive")(lambda targets, total_epochs, **kw: ProgressiveSampler(targets, total_epochs, **kw))


def create_sampler(
    name: str, targets: Sequence[int], seed: int = 0, total_epochs: int = 1, num_replicas: int = 1, rank: int = 0
) -> _EpochSampler:
    return SAMPLERS.get(name)(targets, total_epochs, seed=seed, num_replicas=num_replicas, rank=rank)

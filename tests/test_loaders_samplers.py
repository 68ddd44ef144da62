"""On-device augmentation and the samplers."""

import numpy as np
import pytest
import torch

from lcreg.data import ClassBalancedSampler, DeviceLoader, ImageSet, create_sampler
from lcreg.data.loaders import DeviceAugment

MEAN, STD = [0.5, 0.25, 0.0], [0.5, 0.25, 1.0]


def test_crop_flip_shapes_offsets_and_flips():
    size, pad = 6, 2
    aug = DeviceAugment(size, pad, MEAN, STD, torch.device("cpu"))
    # one image whose pixel value encodes its (row, col) in the padded frame
    s = size + 2 * pad
    grid = (torch.arange(s)[:, None] * s + torch.arange(s)[None, :]).to(torch.uint8)
    padded = grid.expand(400, 3, s, s).contiguous()
    g = torch.Generator().manual_seed(0)
    out = aug.crop_flip(padded, g)
    assert out.shape == (400, 3, size, size) and out.dtype == torch.uint8
    top = out[:, 0, 0, :].long().min(dim=1).values // s
    corners = out[:, 0, 0, 0].long()
    flipped = out[:, 0, 0, 0] > out[:, 0, 0, -1]
    left = torch.where(flipped, out[:, 0, 0, -1].long() % s, corners % s)
    offsets = set(zip(top.tolist(), left.tolist()))
    assert offsets == {(i, j) for i in range(2 * pad + 1) for j in range(2 * pad + 1)}
    assert 0 < flipped.float().mean() < 1
    # each crop is a contiguous window (or its mirror image)
    rows = out[:, 0, :, 0].long() // s
    assert torch.all(rows[:, 1:] - rows[:, :-1] == 1)


def test_device_loader_values_and_padding():
    images = np.zeros((8, 4, 4, 3), dtype=np.uint8)
    images[..., 0] = 255
    split = ImageSet(np.arange(8) % 2, images=images)
    test = DeviceLoader(split, 3, torch.device("cpu"), MEAN, STD, train=False)
    batches = list(test)
    assert [b[0].shape[0] for b in batches] == [3, 3, 2]  # every test image once
    x = batches[0][0]
    assert torch.allclose(x[:, 0], torch.full_like(x[:, 0], 1.0))  # (1 - 0.5) / 0.5
    assert torch.allclose(x[:, 1], torch.full_like(x[:, 1], -1.0))  # (0 - 0.25) / 0.25
    train = DeviceLoader(split, 4, torch.device("cpu"), MEAN, STD, train=True, padding=2, seed=0)
    xs = torch.cat([b[0] for _ in range(20) for b in train])
    assert xs.shape[1:] == (3, 4, 4)
    # zero padding shows up as the normalised value of black
    assert torch.isclose(xs[:, 0], torch.tensor(-1.0)).any() and torch.isclose(xs[:, 0], torch.tensor(1.0)).any()


def test_device_loader_drops_last_and_follows_sampler():
    split = ImageSet(np.repeat([0, 1], [30, 2]), images=np.zeros((32, 4, 4, 3), np.uint8))
    sampler = create_sampler("class_balanced", split.targets, seed=0)
    loader = DeviceLoader(split, 8, torch.device("cpu"), MEAN, STD, train=True, sampler=sampler, padding=0)
    labels = torch.cat([y for _, y in loader])
    assert len(loader) == 4 and len(labels) == 32
    assert 0.35 < labels.float().mean() < 0.65  # balanced despite 30:2


TARGETS = np.repeat(np.arange(5), [400, 200, 100, 50, 10])


@pytest.mark.parametrize(
    "name,expected_share_of_tail",
    [
        ("instance", 10 / 760),
        ("class_balanced", 0.2),
        ("sqrt", np.sqrt(10) / np.sqrt([400, 200, 100, 50, 10]).sum()),
    ],
)
def test_sampler_class_shares(name, expected_share_of_tail):
    sampler = create_sampler(name, TARGETS, seed=0)
    idx = np.concatenate([list(sampler) for sampler.epoch in range(5)])
    share = np.mean(TARGETS[idx] == 4)
    assert share == pytest.approx(expected_share_of_tail, rel=0.15, abs=0.005)
    assert len(list(sampler)) == len(TARGETS)


def test_class_balanced_runs_of_four():
    idx = list(ClassBalancedSampler(TARGETS, seed=1))
    labels = TARGETS[idx][:400].reshape(-1, 4)
    assert np.all(labels == labels[:, :1])  # four images of a class at a time


def test_progressive_moves_from_instance_to_balanced():
    s = create_sampler("progressive", TARGETS, seed=0, total_epochs=10)
    s.set_epoch(0)
    early = np.mean(TARGETS[list(s)] == 4)
    s.set_epoch(10)
    late = np.mean(TARGETS[list(s)] == 4)
    assert early < 0.03 and late > 0.15


def test_ddp_shards_are_disjoint_and_cover():
    shards = [list(create_sampler("instance", TARGETS, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert sum(len(s) for s in shards) >= len(TARGETS)
    assert set().union(*map(set, shards)) == set(range(len(TARGETS)))
    assert len(set(shards[0]) & set(shards[1])) <= 1


def test_worker_loader_reads_paths_and_names_a_corrupt_file(tmp_path):
    from PIL import Image

    from lcreg.data import worker_loader
    from lcreg.errors import LcregError

    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 30), 60 * i, dtype=np.uint8)).save(p)  # grayscale, not square
        paths.append(str(p))
    split = ImageSet(np.array([0, 1, 0, 1]), paths=paths)
    train = worker_loader(
        split,
        2,
        24,
        MEAN,
        STD,
        train=True,
        sampler=create_sampler("instance", split.targets),
        num_workers=0,
        color_jitter=0.4,
        pin_memory=False,
    )
    x, y = next(iter(train))
    assert x.shape == (2, 3, 24, 24) and y.dtype == torch.int64
    test = worker_loader(split, 3, 24, MEAN, STD, train=False, num_workers=0, pin_memory=False)
    assert [b[0].shape[0] for b in test] == [3, 1]
    (tmp_path / "2.png").write_bytes(b"garbage")
    with pytest.raises(LcregError, match="2.png"):
        list(test)


def test_cli_error_from_a_worker_is_one_line():
    from lcreg.cli import _one_line

    wrapped = (
        "Caught LcregError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1\nlcreg.errors.LcregError: cannot read image /d/bad.jpg: OSError'
    )
    assert _one_line(wrapped) == "cannot read image /d/bad.jpg: OSError"

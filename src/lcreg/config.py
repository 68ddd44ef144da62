"""Typed run configuration: dataclass defaults, YAML presets and dotted overrides.

A preset (``configs/<name>.yaml``, shipped inside the package) lists only the keys that
differ from the defaults below; ``key=value`` overrides on the command line are applied
after it. Every key is checked: an unknown one is an :class:`LcregError` that names the
nearest valid key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, get_args, get_origin, get_type_hints

import yaml

from lcreg.errors import LcregError, short
from lcreg.registry import BACKBONES, DATASETS, METHODS, SAMPLERS, Registry


@dataclass
class DataConfig:
    dataset: str = "demo"  # cifar10-lt | cifar100-lt | folder | list | demo
    data_dir: Optional[str] = None  # a folder or .tar.gz/.zip (--data-dir); None: download (CIFAR) or built in (demo)
    imbalance_factor: Optional[float] = 100.0  # None keeps a folder's own distribution
    profile: str = "exp"  # exp | step
    selection_seed: int = 0  # LDAM/MiSLAS: np.random.seed(0) before the per-class shuffles
    download: bool = True  # torchvision download when data_dir holds no data (online only)
    # user folders and list files
    test_fraction: float = 0.2  # a single folder is split stratified by this fraction
    val_fraction: float = 0.0  # held-out validation carved from the training data
    # where a validation split comes from: "train" (val_fraction of the long-tailed training
    # set) or "unused" (up to val_per_class images per class that the long-tailed selection
    # leaves out: CIFAR-10-LT IF 100 uses 12,406 of 50,000; costs the training set nothing)
    val_source: str = "train"
    val_per_class: int = 1000  # val_source=unused: images per class, at most (CIFAR-10's test split has 1,000)
    train_list: Optional[str] = None  # list dataset: "relative/path.jpg label" per line, under data_dir
    test_list: Optional[str] = None  # list dataset: the test split's list file
    val_list: Optional[str] = None  # list dataset: a validation split of its own (instead of val_fraction)
    reindex_by_frequency: bool = False  # list dataset: renumber classes by training count, most frequent 0
    # Many / Medium / Few: many > many_threshold >= medium >= few_threshold > few
    many_threshold: int = 100
    few_threshold: int = 20  # classes with fewer training images are Few
    # images and augmentation
    image_size: int = 32  # 0: chosen from the images (folder and list data; see configs/folder.yaml)
    crop_padding: int = 4  # random crop of image_size after padding by this many pixels
    mean: list = field(default_factory=lambda: [0.4914, 0.4822, 0.4465])  # per-channel normalisation (CIFAR's)
    std: list = field(default_factory=lambda: [0.2023, 0.1994, 0.2010])  # ... and std
    color_jitter: float = 0.0  # large-image path only
    loader: str = "auto"  # auto | device | workers
    num_workers: int = 4  # DataLoader worker processes (loader=workers)
    cache_dir: Optional[str] = None  # default: $XDG_CACHE_HOME/lcreg or ~/.cache/lcreg


@dataclass
class LatentConfig:
    """The default reading of eq. 1-2 (docs/method.md, results/latent_screen.md): eq. 1 over
    cosine similarities / 0.1, eq. 2 the softmax of the sigmoid maps / 0.1. Both keep the
    equations' form; the temperatures give them a scale, which the literal reading (dot
    product, softmax of S itself: ``AS_WRITTEN_READINGS``) lacks, and with it the latent
    categories collapse to a position code."""

    num_latents: int = 40  # M
    decoder: str = "concat_sim"  # concat_sim | sum_recon | concat_recon
    weights: str = "sigmoid"  # eq. 2 softmax over: sigmoid maps S (paper) | logits (the similarity before the sigmoid)
    similarity: str = "cosine"  # eq. 1: cosine (cos(K_m, f_n)) | dot (K^T f, as written)
    temperature: float = 0.1  # eq. 1: S = sigmoid(similarity / temperature); 1 as written
    weight_temperature: float = 0.1  # eq. 2: S_hat = softmax(S / weight_temperature); 1 as written
    # centre the similarity logits over the batch at each position before eq. 1-2 (a running
    # mean at evaluation, like BatchNorm over the position axis): a code the same for every
    # image has nothing left to carry
    centre: bool = False


@dataclass
class ModelConfig:
    backbone: str = "resnet32"  # resnet32 | resnet50 | resnet101 | resnet152 | auto (from data.image_size)
    pretrained: bool = False  # torchvision ImageNet weights (needs them cached offline)
    # what the backbone's convolutions pad with: zeros (the published nets) | reflect | circular
    # (no border cue, so no absolute position to code: docs/method.md, issue of the position code)
    padding: str = "zeros"
    latent: LatentConfig = field(default_factory=LatentConfig)


@dataclass
class LossConfig:
    alpha: float = 0.1  # latent augmentation (eq. 10)
    beta: float = 0.1  # reconstruction (eq. 10)
    gamma: float = 1.0  # classification (eq. 10)
    lambda0: float = 0.5  # ISDA strength; lambda = lambda0 * t / T
    covariance: str = "full"  # full | diagonal
    latent_samples: str = "pooled"  # pooled (weighted pooling per category) | positions
    latent_bias: bool = True  # per-category bias b in eq. 9
    detach_features: bool = True  # eq. 4 and 8-9 see f.detach(): they train the latent head, not the backbone
    detach_terms: str = "both"  # with detach_features, which: both | recon (eq. 8-9 reach the backbone) | latent_aug
    recon_similarity: str = "dot"  # eq. 4: C_f = f_hat^T f (dot, as written) | cosine / recon_temperature
    recon_temperature: float = 1.0  # eq. 4: C_f divided by it
    recon_reduction: str = "mean"  # eq. 4 over positions: mean | sum (as written); always the mean over images


@dataclass
class Stage1Config:
    epochs: int = 200  # representation learning (the method's loss, mixup where it mixes)
    batch_size: int = 128  # the global batch (split over torchrun's processes)
    lr: float = 0.1  # SGD
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 2e-4  # on every parameter, as MiSLAS and LDAM-DRW
    warmup_epochs: int = 5  # linear warm-up, per iteration
    schedule: str = "step"  # step | cosine
    milestones: list = field(default_factory=lambda: [160, 180])  # step schedule: epochs where the lr drops
    lr_decay: float = 0.1  # step schedule: lr x lr_decay at each milestone (LDAM-DRW's code: 0.01)
    mixup_alpha: float = 1.0  # Beta(alpha, alpha) of mixup, for the methods that mix (0: none)
    sampler: str = "instance"  # instance | class_balanced | sqrt | progressive


@dataclass
class Stage2Config:
    epochs: int = 10  # classifier re-training on the frozen stage-1 backbone
    batch_size: int = 128  # the global batch, drawn by stage2.sampler
    lr: float = 0.1  # cosine schedule, per iteration
    lr_factor: float = 0.5  # the classifier's lr is lr_factor * lr
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 2e-4  # on the parameters stage 2 trains
    eps_head: float = 0.3  # label-aware smoothing of the most frequent class
    eps_tail: float = 0.0  # ... and of the rarest (MiSLAS's concave curve between)
    shift_bn: bool = False  # re-estimate the backbone's BN statistics on the re-sampled data (MiSLAS)
    sampler: str = "class_balanced"  # instance | class_balanced | sqrt | progressive


# settings of how and where a run trains, not of what it trains (every method reads them; two
# runs that differ only in these are runs of the same experiment)
RUN_SETTINGS = (
    "config_version",
    "name",
    "device",
    "amp",
    "compile",
    "compile_mode",
    "deterministic",
    "eval_every",
    "log_every",
    "output_dir",
)


@dataclass
class Config:
    config_version: int = 3  # CONFIG_VERSION; saved configs without it are read as lcreg 0.1's
    name: str = "demo"  # the preset's name: run folders are runs/<name>-seed<N>-<time>
    method: str = "lcreg"  # a registered method (lcreg methods): lcreg, mislas, ce, ldam_drw, ...
    # the chosen method's own hyper-parameters (its Params dataclass; lcreg methods NAME),
    # filled with its defaults when the config is resolved
    method_params: dict = field(default_factory=dict)
    seed: int = 0  # model init, sampling, augmentation (the long-tailed selection: data.selection_seed)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on GPU, off on CPU) | bf16 | off
    compile: str = "auto"  # auto (on for CUDA) | on | off: torch.compile of backbone and head
    compile_mode: str = "auto"  # auto | default | reduce-overhead (CUDA graphs) | max-autotune | ...
    deterministic: bool = False  # deterministic kernels: repeatable bit for bit on CPU, slower
    eval_every: int = 10  # test-set pass every N epochs (logged, never used to select)
    log_every: int = 50  # steps between host syncs for the progress bar
    output_dir: str = "runs"  # where a run folder goes when --out is not given
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)


# --------------------------------------------------------------------------------------
# dict <-> dataclass


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def valid_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """All dotted keys of a config class, nested sections included."""
    keys = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        keys.append(key)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(valid_keys(hints[f.name], key + "."))
    return keys


def _unknown_key(key: str) -> LcregError:
    old = key.split(".", 1)[1] if key.startswith("loss.") else ""
    if old in LEGACY_METHOD_KEYS:
        new, owners = LEGACY_METHOD_KEYS[old]
        return LcregError(
            f"'{short(key)}' is now method_params.{new} (a parameter of {', '.join(owners)}; lcreg methods NAME)"
        )
    close = difflib.get_close_matches(key, valid_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return LcregError(f"unknown config key '{short(key)}'{hint}")


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check (and gently convert) one value against its annotated type."""
    origin = get_origin(typ)
    if origin is not None and type(None) in get_args(typ):  # Optional[X]
        if value is None:
            return None
        typ = next(a for a in get_args(typ) if a is not type(None))
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, bool):  # YAML 1.1 reads on / off / yes / no as booleans
            return "on" if value else "off"
        if isinstance(value, (str, int, float)):
            return str(value)
    elif typ is list:
        if isinstance(value, (list, tuple)):
            return list(value)
    else:
        return value
    raise LcregError(f"config key '{short(key)}' expects {getattr(typ, '__name__', typ)}, got {short(value)}")


def _apply(obj: Any, updates: dict, prefix: str = "") -> None:
    hints = get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for k, v in updates.items():
        key = prefix + str(k)
        if k not in names:
            raise _unknown_key(key)
        current = getattr(obj, k)
        if isinstance(current, dict) and isinstance(v, dict):  # method_params: merged, checked by the method
            setattr(obj, k, {**current, **v})
        elif dataclasses.is_dataclass(current):
            if not isinstance(v, dict):
                raise LcregError(f"config key '{short(key)}' is a section; give its keys ({short(key)}.<key>=...)")
            _apply(current, v, key + ".")
        else:
            setattr(obj, k, _coerce(v, hints[k], key))


def migrate(d: dict) -> dict:
    """Configs of lcreg 0.1 chose the method with ``model.latent.enabled``: true is LCReg,
    false the MiSLAS baseline. Today that is ``method``; the old key still reads. Configs
    before version 3 kept the comparison methods' keys under ``loss``: they move to
    ``method_params`` when the config names the method that reads them (saved configs do)."""
    latent = d.get("model", {}).get("latent") if isinstance(d.get("model"), dict) else None
    if isinstance(latent, dict) and "enabled" in latent:
        enabled = latent.pop("enabled")
        if "method" not in d or enabled is False:
            d["method"] = "lcreg" if enabled else "mislas"
    loss = d.get("loss")
    if isinstance(loss, dict) and "method" in d and any(k in loss for k in LEGACY_METHOD_KEYS):
        params = d.setdefault("method_params", {}) if isinstance(d.get("method_params", {}), dict) else {}
        for old, (new, owners) in LEGACY_METHOD_KEYS.items():
            if old in loss:
                value = loss.pop(old)
                if d["method"] in owners:
                    params.setdefault(new, value)
    return d


# The readings of the paper's open equations as written (docs/method.md). A saved config
# from before they were keys (no config_version) was trained with exactly these, whatever
# today's defaults are.
AS_WRITTEN_READINGS = {
    "model": {"latent": {"weights": "sigmoid", "similarity": "dot", "temperature": 1.0, "weight_temperature": 1.0}},
    "loss": {
        "detach_features": False,
        "detach_terms": "both",  # moot while nothing is detached; named so a run that detaches one term says so
        "recon_similarity": "dot",
        "recon_temperature": 1.0,
        "recon_reduction": "mean",
    },
}
CONFIG_VERSION = 3  # 1: lcreg 0.1 (model.latent.enabled, readings not yet keys); 2: methods' keys under loss
# where the comparison methods' keys lived before they owned them (config_version 2):
# loss.<old> -> method_params.<new>, for the methods that read it
LEGACY_METHOD_KEYS = {
    "drw_epoch": ("drw_epoch", ("ldam_drw", "remix_drw")),
    "cb_beta": ("cb_beta", ("ldam_drw", "remix_drw", "class_balanced")),
    "ldam_max_margin": ("max_margin", ("ldam_drw",)),
    "ldam_scale": ("scale", ("ldam_drw",)),
    "focal_gamma": ("gamma", ("focal",)),
    "logit_adjust_tau": ("tau", ("balanced_softmax",)),
    "remix_kappa": ("kappa", ("remix_drw",)),
    "remix_tau": ("tau", ("remix_drw",)),
}


def flat_keys(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: nested config sections as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def as_written_overrides() -> list[str]:
    """The as-written readings as ``key=value`` overrides (e.g. for ``lcreg train``)."""
    return [f"{k}={v}" for k, v in flat_keys(AS_WRITTEN_READINGS).items()]


def _fill_missing(d: dict, defaults: dict) -> None:
    for k, v in defaults.items():
        if isinstance(v, dict):
            if not isinstance(d.get(k), dict):
                d[k] = {}
            _fill_missing(d[k], v)
        else:
            d.setdefault(k, v)


def from_dict(d: dict) -> Config:
    """A saved config (run folder, model file): today's defaults for keys it lacks, except
    that one written before ``config_version`` 2 keeps the as-written readings it was
    trained with."""
    d = migrate(copy.deepcopy(dict(d)))
    if d.get("config_version", 1) < 2:
        _fill_missing(d, AS_WRITTEN_READINGS)
    d["config_version"] = CONFIG_VERSION  # the format is read as today's from here on
    cfg = Config()
    _apply(cfg, d)
    validate(cfg)
    return cfg


# --------------------------------------------------------------------------------------
# presets and overrides


def preset_dir() -> Path:
    return Path(str(resources.files("lcreg") / "configs"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    from lcreg.files import read_text

    text = read_text(path, "config file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LcregError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LcregError(f"config file {path} must hold a mapping of keys")
    return data


def resolve_preset(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = preset_dir() / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    close = difflib.get_close_matches(name_or_path, preset_names(), n=1, cutoff=0.4)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise LcregError(f"no config preset or file '{name_or_path}'{hint} (presets: {', '.join(preset_names())})")


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> ``{'a': {'b': {'c': value}}}`` with YAML typing of the value."""
    if "=" not in text:
        raise LcregError(f"override '{short(text)}' must look like key=value (e.g. stage1.epochs=10)")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(
    preset: Optional[str] = None, overrides: Optional[list[str]] = None, base: Optional[Config] = None
) -> Config:
    """Defaults (or ``base``, e.g. a saved run's config), then a preset, then overrides."""
    cfg = base if base is not None else Config()
    if preset:
        path = resolve_preset(preset)
        data = _read_yaml(path)
        data.setdefault("name", path.stem)
        _apply(cfg, migrate(data))
    for text in overrides or []:
        _apply(cfg, migrate(parse_override(text)))
    validate(cfg)
    return cfg


# allowed values: hand-kept for the settings, from the registries (lcreg.registry) for the
# methods, datasets, backbones and samplers
CHOICES = {
    "method": METHODS,
    "data.dataset": DATASETS,
    "model.backbone": BACKBONES,
    "stage1.sampler": SAMPLERS,
    "stage2.sampler": SAMPLERS,
    "data.profile": ("exp", "step"),
    "data.loader": ("auto", "device", "workers"),
    "data.val_source": ("train", "unused"),
    "model.padding": ("zeros", "reflect", "circular"),
    "model.latent.decoder": ("concat_sim", "sum_recon", "concat_recon"),
    "model.latent.weights": ("sigmoid", "logits"),
    "model.latent.similarity": ("dot", "cosine"),
    "loss.recon_similarity": ("dot", "cosine"),
    "loss.recon_reduction": ("mean", "sum"),
    "loss.detach_terms": ("both", "recon", "latent_aug"),
    "loss.covariance": ("full", "diagonal"),
    "loss.latent_samples": ("pooled", "positions"),
    "stage1.schedule": ("step", "cosine"),
    "amp": ("auto", "bf16", "off"),
    "compile": ("auto", "on", "off"),
    "compile_mode": ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
}


def get_key(cfg: Config, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


# (key, lowest allowed, whether the lowest itself is allowed): counts, sizes and rates
_LOWER_BOUNDS = (
    ("stage1.epochs", 0, True),
    ("stage2.epochs", 0, True),
    ("stage1.batch_size", 1, True),
    ("stage2.batch_size", 1, True),
    ("stage1.lr", 0, False),
    ("stage2.lr", 0, False),
    ("stage2.lr_factor", 0, False),
    ("stage1.momentum", 0, True),
    ("stage2.momentum", 0, True),
    ("stage1.weight_decay", 0, True),
    ("stage2.weight_decay", 0, True),
    ("stage1.warmup_epochs", 0, True),
    ("stage1.mixup_alpha", 0, True),
    ("stage2.eps_head", 0, True),
    ("stage2.eps_tail", 0, True),
    ("loss.alpha", 0, True),
    ("loss.beta", 0, True),
    ("loss.gamma", 0, True),
    ("loss.lambda0", 0, True),
    ("model.latent.num_latents", 1, True),
    ("data.image_size", 0, True),
    ("data.crop_padding", 0, True),
    ("data.num_workers", 0, True),
    ("data.val_per_class", 1, True),
    ("data.many_threshold", 0, True),
    ("data.few_threshold", 0, True),
    ("eval_every", 0, True),
    ("log_every", 1, True),
    ("model.latent.temperature", 0, False),
    ("model.latent.weight_temperature", 0, False),
    ("loss.recon_temperature", 0, False),
)


# (key, highest allowed): values that would ask for absurd memory or time, refused before
# anything is allocated (M latent categories make an M x D x D covariance; a crop padding or
# an image size beyond these is not an image setting; a schedule of millions of epochs never ends)
_UPPER_BOUNDS = (
    ("seed", 2**32 - 1),  # numpy's seeds
    ("data.selection_seed", 2**32 - 1),
    ("stage1.epochs", 100_000),
    ("stage2.epochs", 100_000),
    ("stage1.warmup_epochs", 100_000),
    ("stage1.batch_size", 1 << 20),
    ("stage2.batch_size", 1 << 20),
    ("model.latent.num_latents", 4096),
    ("data.image_size", 2048),
    ("data.crop_padding", 256),
    ("data.num_workers", 256),
    ("data.val_per_class", 1_000_000),
    ("eval_every", 100_000),
    ("log_every", 1 << 20),
)
MAX_LIST = 64  # milestones and other lists in a config


# values a registry does not hold but the config accepts
_SPECIAL = {"model.backbone": ("auto",)}  # chosen from the images (the folder preset)


def validate(cfg: Config) -> None:
    for key, choices in CHOICES.items():
        value = get_key(cfg, key)
        names = choices.names() if isinstance(choices, Registry) else list(choices)
        if value not in names and value not in _SPECIAL.get(key, ()):
            close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if not close and isinstance(choices, Registry):
                hint = f"; a plug-in's {choices.kind}? name its module in LCREG_PLUGINS"
            raise LcregError(f"{key}={short(repr(value))} is not one of: {', '.join(names)}{hint}")
    for key, high in _UPPER_BOUNDS:
        value = get_key(cfg, key)
        if isinstance(value, (int, float)) and value > high:
            raise LcregError(f"{key} must be <= {high}, got {short(value, 24)}")
    if cfg.seed < 0 or cfg.data.selection_seed < 0:
        raise LcregError(f"seed and data.selection_seed must be >= 0 (numpy's seeds), got {short(cfg.seed, 24)}")
    for key in ("stage1.milestones", "data.mean", "data.std"):
        if len(get_key(cfg, key)) > MAX_LIST:
            raise LcregError(f"{key} holds {len(get_key(cfg, key))} values; at most {MAX_LIST}")
    if cfg.data.crop_padding > max(cfg.data.image_size, 32):
        raise LcregError(
            f"data.crop_padding={cfg.data.crop_padding} is larger than the image (data.image_size={cfg.data.image_size})"
        )
    for key, low, inclusive in _LOWER_BOUNDS:
        value = get_key(cfg, key)
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            relation = ">=" if inclusive else ">"
            raise LcregError(f"{key} must be {relation} {low}, got {short(value, 24)}")
    imb = cfg.data.imbalance_factor
    if imb is not None and not (math.isfinite(imb) and imb >= 1):
        raise LcregError(
            f"data.imbalance_factor must be a finite number >= 1 (or null to keep the data's own "
            f"distribution), got {imb}"
        )
    if not 0 <= cfg.data.val_fraction < 1 or not 0 < cfg.data.test_fraction < 1:
        raise LcregError("data.val_fraction must lie in [0, 1) and data.test_fraction in (0, 1)")
    if cfg.stage1.momentum >= 1 or cfg.stage2.momentum >= 1:
        raise LcregError("stage1.momentum and stage2.momentum must be < 1")
    if cfg.stage2.eps_head >= 1 or cfg.stage2.eps_tail >= 1:
        raise LcregError("stage2.eps_head and stage2.eps_tail (label smoothing) must be < 1")
    if cfg.data.dataset == "demo" and cfg.data.data_dir:
        # the demo's digits are built in: a --data-dir here would be silently ignored
        raise LcregError(
            f"the demo data is built in and reads no --data-dir (got {cfg.data.data_dir}); "
            "your own images: lcreg train folder --data-dir DIR; CIFAR: lcreg train cifar10_lt_if100 --data-dir DIR"
        )
    if not 0 < cfg.stage1.lr_decay <= 1:
        raise LcregError(
            f"stage1.lr_decay (the lr factor at each milestone) must lie in (0, 1], got {cfg.stage1.lr_decay}"
        )
    if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in cfg.stage1.milestones):
        raise LcregError(
            f"stage1.milestones must be a list of epochs (integers >= 0), got {short(cfg.stage1.milestones)}"
        )
    if len(cfg.data.mean) != 3 or len(cfg.data.std) != 3 or not all(s > 0 for s in cfg.data.std):
        raise LcregError("data.mean and data.std need three values each (std > 0)")
    resolve_method(cfg)
    if cfg.data.few_threshold > cfg.data.many_threshold:
        raise LcregError("data.few_threshold must not exceed data.many_threshold")


def check_method_params(params_cls: Optional[type], given: dict, method: str) -> dict:
    """A method's own parameters: every key a field of its ``Params`` dataclass (did-you-mean
    otherwise), each value of the field's type and within its bounds (field metadata ``min``,
    ``max``; ``gt``, ``lt`` exclude the bound), defaults filled in."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)} if params_cls is not None else {}
    if not isinstance(given, dict):
        raise LcregError(f"method_params must be a mapping of {method}'s parameters, got {short(given)}")
    hints = get_type_hints(params_cls) if params_cls is not None else {}
    checked = {}
    for key, value in given.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            own = ", ".join(fields) or "none"
            raise LcregError(f"method {method} has no parameter '{short(key, 30)}'{hint} (its parameters: {own})")
        value = _coerce(value, hints[key], f"method_params.{key}")
        meta = fields[key].metadata
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            bad = (
                not math.isfinite(value)
                or ("min" in meta and value < meta["min"])
                or ("max" in meta and value > meta["max"])
                or ("gt" in meta and value <= meta["gt"])
                or ("lt" in meta and value >= meta["lt"])
            )
            if bad:
                bounds = ", ".join(f"{k} {meta[k]}" for k in ("min", "gt", "max", "lt") if k in meta)
                raise LcregError(f"method_params.{key} of {method} must lie within {bounds}, got {short(value, 24)}")
        checked[key] = value
    return dataclasses.asdict(params_cls(**checked)) if params_cls is not None else {}


def resolve_method(cfg: Config) -> None:
    """Settle what the chosen method decides: its parameters (checked, defaults filled, so the
    saved config holds every value it trained with) and the stage-2 settings it fixes (cRT's
    sampler and lr factor, ...), written into ``cfg.stage2``: one resolved recipe, no second
    source of truth."""
    method = METHODS.get(cfg.method)
    cfg.method_params = check_method_params(getattr(method, "Params", None), cfg.method_params, cfg.method)
    for key, value in getattr(method, "stage2_fixed", {}).items():
        setattr(cfg.stage2, key, value)


def save_config(cfg: Config, path: Path) -> None:
    from lcreg.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_saved_config(path: Path) -> Config:
    return from_dict(_read_yaml(path))

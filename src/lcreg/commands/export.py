"""``lcreg export``: a trained model as TorchScript or ONNX, input (B, 3, S, S) normalised
images, output (B, C) logits, checked against the original on a batch before it is kept."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from lcreg.commands.trained import TrainedModel
from lcreg.errors import LcregError
from lcreg.files import check_output, replace_output

FORMATS = ("torchscript", "onnx")
ONNX_INSTALL = "pip install 'lcreg-longtail[export]' (onnx, onnxscript, onnxruntime)"


class LogitsOnly(nn.Module):
    """The model with its latent-analysis outputs dropped: images -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).logits


def _example_batch(trained: TrainedModel, batch: int, seed: int = 0) -> torch.Tensor:
    size = trained.cfg.data.image_size
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _export_torchscript(module: nn.Module, example: torch.Tensor, path: Path) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice; tracing still works
        scripted = torch.jit.trace(module, example, check_trace=False)
        scripted.save(str(path))
        return torch.jit.load(str(path))


def _export_onnx(module: nn.Module, example: torch.Tensor, path: Path):
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        raise LcregError(f"ONNX export needs the onnx packages, which are not installed: {ONNX_INSTALL}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])


@torch.no_grad()
def export_model(trained: TrainedModel, fmt: str, path: Path, check_batch: int = 8, atol: float = 1e-4) -> dict:
    """Export on the CPU in fp32, run the exported file on a batch of a different size than
    the trace, and fail (removing the file) when its logits differ by more than ``atol``."""
    if fmt not in FORMATS:
        raise LcregError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    module = LogitsOnly(trained.model.float().cpu().eval()).eval()
    example, check = _example_batch(trained, 2), _example_batch(trained, check_batch, seed=1)
    check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target and renamed only once checked: a failed export never
    # replaces (or leaves half of) a file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        export = _export_torchscript if fmt == "torchscript" else _export_onnx
        exported = export(module, example, tmp)
        reference = module(check).float()
        got = exported(check).float()
        diff = (got - reference).abs().max().item()
        if got.shape != reference.shape or not diff <= atol:
            raise LcregError(f"the {fmt} export's logits differ from the model's by {diff:.3g} (> {atol}); not kept")
        replace_output(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "path": str(path),
        "format": fmt,
        "input": list(check.shape[1:]),
        "num_classes": reference.shape[1],
        "check_batch": check_batch,
        "max_abs_diff": diff,
    }

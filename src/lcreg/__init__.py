"""lcreg: long-tailed image classification with latent categories based recognition.

The method is a library (``lcreg.models``, ``lcreg.losses``, ``lcreg.data``) that any
training loop can use; ``lcreg.engine`` and ``lcreg.cli`` only compose it.
"""

__version__ = "0.1.0"


def load_model(name: str, device: str = "cpu"):
    """A trained model in one line: ``name`` is a run folder, a model file, a Hugging Face-style
    folder (``zoo/NAME``) or ``hf-hub:ORG/NAME``. Returns a ``TrainedModel``: ``.model`` (in eval
    mode; ``.model(x).logits``), ``.preprocess(pil_images)`` (the batch it takes),
    ``.class_names``, ``.cfg``.

        m = lcreg.load_model("zoo/lcreg-resnet32-cifar10lt-if100-seed0")
        probs = m.model(m.preprocess(Image.open("cat.jpg"))).logits.softmax(1)
    """
    import torch

    from lcreg.commands.trained import load_trained_model

    return load_trained_model(name, torch.device(device))

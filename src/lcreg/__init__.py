"""lcreg: long-tailed image classification with latent categories based recognition.

The method is a library (``lcreg.models``, ``lcreg.losses``, ``lcreg.data``) that any
training loop can use; ``lcreg.engine`` and ``lcreg.cli`` only compose it.
"""

__version__ = "0.1.0"

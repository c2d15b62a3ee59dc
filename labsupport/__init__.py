"""labsupport: the library every chapter and lab of *Transformers, lab by lab* imports.

Modules, each with one job:

- :mod:`labsupport.device`     — pick CUDA, then Apple MPS, then CPU; seed every RNG.
- :mod:`labsupport.data`       — the course data shipped with the package, checksum-verified.
- :mod:`labsupport.train`      — a small training loop with progress bars and loss curves.
- :mod:`labsupport.plots`      — the figures the chapters and labs share.
- :mod:`labsupport.widgets`    — ipywidgets explorers used in the book.
- :mod:`labsupport.tokenizers` — reference tokenizers (chapter 1).
- :mod:`labsupport.checks`     — the checking helpers that every test cell calls.

labsupport knows nothing about grading or the book: it is an ordinary, documented library.
"""

from labsupport.device import get_device, seed_everything

__all__ = ["get_device", "seed_everything"]
__version__ = "0.1.0"

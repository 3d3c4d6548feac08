"""Progress bars: tqdm's notebook widget where ipywidgets is installed, its text bar everywhere else.

``tqdm.auto`` warns ("IProgress not found") in a notebook without ipywidgets, once, when it is first
imported; the text bar it falls back to is fine, so that warning is not shown. The filter is local to
this import: the user's warning settings are not changed.
"""

from __future__ import annotations

import warnings

from tqdm import TqdmWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

__all__ = ["tqdm"]

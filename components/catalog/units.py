"""Units and small shared types of the catalog."""

from __future__ import annotations

from typing import Literal

GIB = 1024**3
GB = 1000**3

Cloud = Literal["gcp", "aws"]
Attention = Literal["mla", "gqa"]

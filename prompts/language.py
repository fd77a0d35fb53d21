"""Which language a text is in, so every node can pick its zh or en template."""

from __future__ import annotations

import re
from typing import Literal

Lang = Literal["zh", "en"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect(text: str) -> Lang:
    """Chinese as soon as the text holds a CJK character: mixed questions ("iPhone 的价格") are Chinese."""
    return "zh" if _CJK.search(text) else "en"

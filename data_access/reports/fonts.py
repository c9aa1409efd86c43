"""The CJK fonts of a briefing: Debian's fonts-noto-cjk, found on this machine (nothing is downloaded).

GB/T 9704 asks for 小标宋 titles, 仿宋 body, 黑体 first-level headings and 楷体 second-level ones; Debian has no
licensed 仿宋 or 小标宋, so the stand-ins are Noto Serif CJK SC (title bold, body regular, second-level headings
bold) and Noto Sans CJK SC (first-level headings, tables and charts).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

from ..db import BangfuError

SERIF = "Noto Serif CJK SC"
SANS = "Noto Sans CJK SC"
PACKAGE = "fonts-noto-cjk"
# where Debian's package puts them (fc-match finds them elsewhere)
KNOWN = {
    (SANS, "Regular"): "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    (SANS, "Bold"): "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    (SERIF, "Regular"): "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    (SERIF, "Bold"): "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
}


class MissingFont(BangfuError):
    """A font the briefing needs is not installed (one plain sentence)."""


@cache
def font_file(family: str, style: str = "Regular") -> str:
    """The file holding ``family`` in ``style``; MissingFont (a plain sentence) when it is not installed."""
    known = KNOWN.get((family, style))
    if known and Path(known).exists():
        return known
    if shutil.which("fc-match"):
        out = subprocess.run(["fc-match", "-f", "%{family}\t%{file}", f"{family}:style={style}"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
        fam, _, path = out.partition("\t")
        if family in fam.split(",") and path and Path(path).exists():
            return path
    raise MissingFont(f"未找到中文字体 {family}（{style}），无法生成通报：请安装 Debian 软件包 {PACKAGE}"
                      f"（apt-get install -y {PACKAGE}）")


def check() -> None:
    """Every font a briefing uses is installed (else MissingFont)."""
    for family, style in KNOWN:
        font_file(family, style)

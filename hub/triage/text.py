"""Input validation, normalisation and language detection for complaint texts."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

MAX_CHARS = 5000
_CJK_RUN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]+")


def validate(text: object) -> str:
    """Return ``text`` if it is a usable complaint text, else raise ``ValueError`` saying why."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is too long ({len(text)} characters, at most {MAX_CHARS})")
    try:
        text.encode()
    except UnicodeEncodeError as err:
        raise ValueError(f"text holds a lone UTF-16 surrogate at character {err.start}, "
                         "which is not text") from None
    return text


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), Traditional Chinese to Simplified, lower case,
    whitespace runs collapsed. Customers in Hong Kong, Taiwan and abroad write "草莓發霉了";
    the rules, the segmenter and the models know "草莓发霉了"."""
    return simplified(plain_form(text))


def plain_form(text: str) -> str:
    """``normalise`` without the Traditional-to-Simplified step (which commutes with it)."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def simplified(plain: str) -> str:
    """The Traditional-to-Simplified step of ``normalise``, on a ``plain_form``."""
    return _simplifier().convert(plain) if _CJK_RUN.search(plain) else plain


def as_written(words: list[str], plain: str, norm: str) -> list[str]:
    """Keywords as the customer wrote them: a keyword found in ``norm`` (``simplified(plain)``)
    becomes the same span of ``plain``, the text before the Traditional-to-Simplified step,
    which maps character for character nearly always (if it changed the length, nothing is
    mapped)."""
    if plain == norm or len(plain) != len(norm):
        return words
    written = []
    for word in words:
        at = norm.find(word)
        written.append(plain[at:at + len(word)] if at >= 0 else word)
    return written


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _simplifier() -> Any:
    """OpenCC's Traditional-to-Simplified converter (characters and phrases; bundled data)."""
    import opencc

    with _lock:
        return opencc.OpenCC("t2s")


def is_cjk(char: str) -> bool:
    """True for a CJK unified ideograph (the basic block and extension A)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF


def language(text: str) -> str:
    """``"zh"`` if at least 30% of the letters are CJK ideographs, else ``"en"``."""
    letters = sum(map(str.isalpha, text))
    cjk = sum(map(len, _CJK_RUN.findall(text)))  # every CJK ideograph is a letter
    if not letters:
        return "zh" if cjk else "en"
    return "zh" if cjk / letters >= 0.3 else "en"

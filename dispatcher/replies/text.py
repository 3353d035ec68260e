"""One normal form of reply text for the keyword rules, the date finder and the classifier."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, accents and curly quotes folded, runs of white space made one space.

    Emojis and punctuation stay: the classifier's character n-grams use them.
    """
    folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _SPACE.sub(" ", plain.casefold()).strip()

"""Both languages complete; Vietnamese in composed (NFC) Unicode with its diacritics."""

from __future__ import annotations

import unicodedata

import pytest
from probefleet.collector.report.i18n import TEXT, Strings
from probefleet.collector.report.model import PLAN_ITEMS


def test_every_string_exists_in_both_languages_and_is_nfc() -> None:
    for key, (vi, en) in TEXT.items():
        assert vi.strip(), key
        assert en.strip(), key
        # Decomposed text (e + combining marks) renders badly in some fonts and breaks search.
        assert unicodedata.is_normalized("NFC", vi), key
    for item in (*PLAN_ITEMS, "met", "not_met", "not_measured"):
        assert item in TEXT


def test_verdicts_and_numbers_read_naturally() -> None:
    vi, en = Strings("vi"), Strings("en")
    assert [vi.verdict(v) for v in ("met", "not_met", "not_measured")] == [
        "Đạt",
        "Không đạt",
        "Chưa đo được",
    ]
    assert vi.num(1234.56) == "1.234,6"
    assert en.num(1234.56) == "1,234.6"
    assert vi.pct(0.953) == "95,3 %"
    assert en.num(None) == "–"
    with pytest.raises(ValueError, match="language 'fr'"):
        Strings("fr")  # type: ignore[arg-type]

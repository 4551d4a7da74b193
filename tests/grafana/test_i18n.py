"""The dashboards and alert texts in Vietnamese and English from the same code: every panel
titled and described in both, the two languages' boards equal but for their words, and no
English left on the Vietnamese boards (every word a Vietnamese syllable or an allowed
technical token)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector.alerts.rules import DEFAULT_RULES, load_alerts
from probefleet.collector.alerts.texts import SUMMARIES_VI
from probefleet.collector.inventory import load_targets

from grafana import alerts, build
from grafana.i18n import COLUMNS, LANGS, Words
from grafana.panel_queries import PANEL_QUERIES

ROOT = Path(__file__).resolve().parents[2]
OUT = build.OUT
TARGETS = load_targets(ROOT / "config" / "targets.sample.toml")
RULES = load_alerts(ROOT / "config" / "alerts.sample.toml", env={})

# Technical tokens a Vietnamese engineer reads as they are (names, units, protocols). Kept
# short on purpose: a new entry is a decision, not a way to silence the test.
ALLOWED = {
    "Mbit/s", "Mbit", "dBm", "dB", "ms", "IPv6", "IPv4", "IP", "DNS", "TCP", "HTTP", "AAAA",
    "FTTH", "CPU", "MQTT", "InfluxDB", "probefleet", "probe-collector", "deadletters",
    "LibreSpeed", "i-Speed", "FCC", "Ofcom", "RSRP", "RSRQ", "SINR", "MCC", "MNC", "LTE",
    "UMTS", "GSM", "SA", "NSA", "IV", "Last Will", "dead letters", "°C",
    "modem",  # the Vietnamese word too (modem 4G)
    "GPS",
}  # fmt: skip
# English words that happen to be Vietnamese syllables too: never used on the Vietnamese
# boards, so here they can only be English left over.
ENGLISH_SYLLABLES = {"the", "to", "on", "at", "by", "an", "in", "per", "no", "it"}
_INITIAL = r"(ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdghklmnprstvx])?"
SYLLABLE = re.compile(rf"^{_INITIAL}[aeiouy]{{1,3}}(ch|ng|nh|[cmnpt])?$")
# Texts a person reads: these keys' string values (queries, field names, ids are not).
TEXT_KEYS = {
    "title", "description", "label", "name", "displayName", "text", "axisLabel",
    "custom.axisLabel",
}  # fmt: skip


def boards(lang: str) -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text())
        for p in sorted((OUT / "dashboards" / "json" / lang).glob("*.json"))
    }


def texts(value: Any, key: str = "") -> Iterator[str]:
    """The human texts of a board (see TEXT_KEYS), plus custom variables' shown texts."""
    if isinstance(value, dict):
        if value.get("type") == "custom" and "query" in value:
            for option in value["query"].split(","):
                yield option.split(" : ")[0]
        for k, v in value.items():
            if k == "value" and isinstance(v, str) and value.get("id") in TEXT_KEYS:
                yield v  # an override property: {"id": "displayName", "value": ...}
            elif k == "name" and "includeAll" in value:
                continue  # a variable's name is an identifier ($commune), its label a text
            else:
                yield from texts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from texts(v, key)
    elif isinstance(value, str) and key in TEXT_KEYS:
        yield value


def _plain(word: str) -> str:
    """Tone marks and vowel marks off, đ -> d: the syllable's letters."""
    word = word.lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def english_left(text: str) -> list[str]:
    """The words of ``text`` that are neither Vietnamese syllables nor allowed tokens."""
    text = re.sub(r"\$\{[^}]*\}|\{\{[^}]*\}\}|`[^`]*`", " ", text)  # templates, code
    for token in sorted(ALLOWED, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(token)}(?![\w-])", " ", text)
    bad = []
    for word in re.findall(r"\w+(?:[_.]\w+)*", text):
        if "_" in word or "." in word or re.search(r"\d", word):
            continue  # an identifier (a rule's name, a config key) or a figure (4G, 19:00)
        plain = _plain(word)
        if word.lower() in ENGLISH_SYLLABLES or not SYLLABLE.match(plain):
            bad.append(word)
    return bad


def test_the_checker_tells_english_from_vietnamese() -> None:
    assert english_left("Tỷ lệ lần đo đạt mục tiêu (Mbit/s) ở Xã/phường Tân Phú") == []
    assert english_left("Nguyễn Khuyến, giường, quốc, oanh, ngoằn ngoèo, 4G/5G, IPv6") == []
    assert english_left("Download per test against the target") == [
        "Download", "per", "test", "against", "the", "target",
    ]  # fmt: skip
    assert english_left("Tải xuống median mỗi ngày") == ["median"]
    assert english_left("cảnh báo collector_lag và `probe-collector x` ${__field.labels.a}") == []


def test_every_panel_has_a_title_and_description_in_both_languages() -> None:
    vi, en = boards("vi"), boards("en")
    assert set(vi) == set(en)
    assert len(vi) == 8
    panels = 0
    for stem in vi:
        assert vi[stem]["title"] != en[stem]["title"], stem
        assert vi[stem]["description"], stem
        assert en[stem]["description"], stem
        for pv, pe in zip(vi[stem]["panels"], en[stem]["panels"], strict=True):
            assert pv["title"], (stem, pe["title"])
            assert pe["title"], (stem, pe["title"])
            assert pv["title"] != pe["title"], (stem, pe["title"])
            if pv["type"] == "row":
                continue
            assert pv["description"], (stem, pe["title"])
            assert pe["description"], (stem, pe["title"])
            assert pv["description"] != pe["description"], (stem, pe["title"])
            panels += 1
    assert panels >= 45


def _without_words(value: Any, key: str = "") -> Any:
    """A board with its human texts (and its uid) blanked: what must not differ."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "name" and "includeAll" in value:
                out[k] = v
            elif k == "uid" and isinstance(v, str) and v.startswith("probefleet-"):
                out[k] = v.removesuffix("-en")
            elif k == "value" and isinstance(v, str) and value.get("id") in TEXT_KEYS:
                out[k] = "·"
            elif k == "query" and value.get("type") == "custom":
                out[k] = [o.split(" : ")[-1] for o in v.split(",")]  # the values only
            elif k == "fields" and isinstance(v, str):
                out[k] = "·"  # a stat's pattern: the column's name or its label
            elif k == "tags" and isinstance(v, list):
                out[k] = [t for t in v if t not in LANGS]
            else:
                out[k] = _without_words(v, k)
        return out
    if isinstance(value, list):
        return [_without_words(v, key) for v in value]
    if isinstance(value, str) and key in TEXT_KEYS:
        return "·"
    return value


def test_both_languages_are_the_same_boards_but_for_their_words() -> None:
    vi, en = boards("vi"), boards("en")
    for stem in vi:
        assert _without_words(vi[stem]) == _without_words(en[stem]), stem
        assert vi[stem]["tags"] == ["probefleet", "vi"]
        assert en[stem]["tags"] == ["probefleet", "en"]
        # The boards' menu stays within the language.
        assert vi[stem]["links"][0]["tags"] == ["probefleet", "vi"]


def test_no_english_is_left_on_the_vietnamese_boards() -> None:
    checked = 0
    for stem, board in boards("vi").items():
        for text in texts(board):
            assert text == unicodedata.normalize("NFC", text), (stem, text)
            assert not english_left(text), (stem, text, english_left(text))
            checked += 1
    assert checked > 400
    # The English boards do have English in them (the check above is not vacuous).
    assert sum(bool(english_left(t)) for b in boards("en").values() for t in texts(b)) > 200


def test_every_column_a_panel_shows_has_a_label_in_both_languages() -> None:
    missing = set()
    for board in boards("vi").values():
        for panel in board["panels"]:
            for t in panel.get("targets", []):
                q = PANEL_QUERIES[t["probefleetQuery"]]
                for name in (*q.columns, *q.fixed_group_by, *t["probefleetGroupBy"]):
                    if name not in COLUMNS:
                        missing.add(name)
    assert not missing
    for name, (vi, en) in COLUMNS.items():
        assert vi, name
        assert en, name
        assert not english_left(vi), (name, vi)


def test_the_alert_rules_speak_the_deployments_language(tmp_path: Path) -> None:
    assert set(DEFAULT_RULES) <= set(SUMMARIES_VI), set(DEFAULT_RULES) - set(SUMMARIES_VI)
    committed = alerts.unescape_all(
        build.load_yaml_json((OUT / "alerting/rules.yaml").read_text())
    )["groups"][0]["rules"]
    assert committed
    for rule in committed:
        for text in (
            rule["title"],
            rule["annotations"]["summary"],
            rule["annotations"]["description"],
        ):
            assert not english_left(text), (rule["uid"], text, english_left(text))
    titles = {r["uid"]: r["title"] for r in committed}
    assert titles["pf-download-below-target-mobile"] == "download_below_target di động"
    # --lang en: the English rules, the English boards under the stable uids and in the
    # folder "probefleet", the Vietnamese ones apart.
    assert build.main(["--lang", "en", "--out", str(tmp_path)]) == 0
    rules = build.load_yaml_json((tmp_path / "alerting/rules.yaml").read_text())
    english = {r["uid"]: r for r in alerts.unescape_all(rules)["groups"][0]["rules"]}
    assert english["pf-download-below-target-mobile"]["title"] == "download_below_target mobile"
    assert english["pf-probe-offline"]["annotations"]["summary"] == "probe offline"
    assert english["pf-probe-offline"]["annotations"]["description"].endswith(
        "the last 1 values all below 1 ({{ $values.VALUE }})."
    )
    provider = build.load_yaml_json((tmp_path / "dashboards/probefleet.yaml").read_text())
    assert [
        (p["folder"], p["options"]["path"].rsplit("/", 1)[1]) for p in provider["providers"]
    ] == [
        ("probefleet", "en"),
        ("probefleet (Tiếng Việt)", "vi"),
    ]
    uid = json.loads((tmp_path / "dashboards/json/en/commune.json").read_text())["uid"]
    assert uid == "probefleet-commune"
    uid = json.loads((tmp_path / "dashboards/json/vi/commune.json").read_text())["uid"]
    assert uid == "probefleet-commune-vi"


def test_words_refuse_an_unknown_language_and_format_numbers_per_language() -> None:
    with pytest.raises(ValueError, match="use one of vi, en"):
        Words("fr")  # type: ignore[arg-type]
    assert Words("vi").num(1500.0) == "1.500"
    assert Words("en").num(1500.0) == "1,500"
    assert Words("vi").num(0.5) == "0,5"
    assert Words("vi", primary=False).uid_suffix == "-vi"

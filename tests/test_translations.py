"""The German catalog is complete, keeps every placeholder, and its compiled .mo is not stale.

The .po is read with a small parser of its own (no polib), so the checks need nothing beyond
the standard library; only the last test goes through Django's translation machinery.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import translation

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale" / "de" / "LC_MESSAGES"
PO_PATH = LOCALE_DIR / "django.po"
MO_PATH = LOCALE_DIR / "django.mo"

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$')
# %(name)s / %(count)d (with optional flags, width, precision), bare %s / %d, {{ name }}.
_PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[sd]|\{\{\s*[\w.|:\"']+\s*\}\}")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), text
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])


def parse_po(path: Path) -> list[dict]:
    """Entries as dicts: "comments" (list of lines) plus msgid, msgid_plural, msgstr[n]…"""
    entries: list[dict] = []
    entry: dict | None = None
    key = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            entry, key = None, None
            continue
        if entry is None:
            entry = {"comments": [], "line": number}
            entries.append(entry)
        if line.startswith("#"):
            entry["comments"].append(line)
            continue
        match = _KEYWORD.match(line)
        if match:
            key = match.group(1)
            entry[key] = _unquote(match.group(2))
        elif line.startswith('"') and key is not None:
            entry[key] += _unquote(line)
        else:
            raise AssertionError(f"{path.name}:{number}: cannot parse {line!r}")
    # Obsolete entries (#~) are not used by gettext; they have no msgid key here.
    return [e for e in entries if "msgid" in e]


def _flags(entry: dict) -> set[str]:
    return {
        flag.strip()
        for comment in entry["comments"]
        if comment.startswith("#,")
        for flag in comment[2:].split(",")
    }


def _translations(entry: dict) -> list[tuple[str, str]]:
    """(source, translation) pairs: msgstr against msgid, msgstr[n>0] against msgid_plural."""
    if "msgid_plural" in entry:
        forms = sorted(k for k in entry if k.startswith("msgstr["))
        return [
            (entry["msgid"] if k == "msgstr[0]" else entry["msgid_plural"], entry[k]) for k in forms
        ]
    return [(entry["msgid"], entry["msgstr"])]


ENTRIES = parse_po(PO_PATH)
HEADER = next(e for e in ENTRIES if e["msgid"] == "" and "msgctxt" not in e)
MESSAGES = [e for e in ENTRIES if e is not HEADER]


def _id(entry: dict) -> str:
    return entry["msgid"][:60]


def test_catalog_header():
    assert "fuzzy" not in _flags(HEADER)
    header = HEADER["msgstr"]
    assert "Language: de\n" in header
    assert "charset=UTF-8" in header
    assert "Plural-Forms: nplurals=2; plural=(n != 1);\n" in header


def test_catalog_is_not_trivially_small():
    assert len(MESSAGES) > 500


@pytest.mark.parametrize("entry", MESSAGES, ids=_id)
def test_entry_is_translated_with_the_same_placeholders(entry):
    assert "fuzzy" not in _flags(entry), f"line {entry['line']}: fuzzy"
    if "msgid_plural" in entry:
        assert {"msgstr[0]", "msgstr[1]"} <= entry.keys(), f"line {entry['line']}"
    for source, translated in _translations(entry):
        assert translated.strip(), f"line {entry['line']}: empty msgstr for {source!r}"
        assert sorted(set(_PLACEHOLDER.findall(translated))) == sorted(
            set(_PLACEHOLDER.findall(source))
        ), f"line {entry['line']}: placeholders differ: {source!r} -> {translated!r}"
        assert sorted(_TAG.findall(translated)) == sorted(_TAG.findall(source)), (
            f"line {entry['line']}: HTML tags differ: {source!r} -> {translated!r}"
        )
        for edge in (str.startswith, str.endswith):
            for char in (" ", "\n"):
                assert edge(translated, char) == edge(source, char), (
                    f"line {entry['line']}: leading/trailing whitespace differs"
                )


def test_compiled_catalog_matches_the_po():
    with MO_PATH.open("rb") as fh:
        mo = gettext.GNUTranslations(fh)
    expected_keys = {""}
    for entry in MESSAGES:
        ctx = entry.get("msgctxt")
        if "msgid_plural" in entry:
            for n, form in ((1, "msgstr[0]"), (2, "msgstr[1]")):
                if ctx is None:
                    got = mo.ngettext(entry["msgid"], entry["msgid_plural"], n)
                else:
                    got = mo.npgettext(ctx, entry["msgid"], entry["msgid_plural"], n)
                assert got == entry[form], f"stale .mo: {entry['msgid']!r} (n={n})"
            forms = [k for k in entry if k.startswith("msgstr[")]
            key = entry["msgid"] if ctx is None else f"{ctx}\x04{entry['msgid']}"
            expected_keys |= {(key, i) for i in range(len(forms))}
        else:
            if ctx is None:
                got = mo.gettext(entry["msgid"])
            else:
                got = mo.pgettext(ctx, entry["msgid"])
            assert got == entry["msgstr"], f"stale .mo: {entry['msgid']!r}"
            expected_keys.add(entry["msgid"] if ctx is None else f"{ctx}\x04{entry['msgid']}")
    # Nothing in the .mo that the .po no longer has (a removed message, an old wording).
    assert set(mo._catalog) == expected_keys


def test_german_is_served_by_django():
    with translation.override("de"):
        assert translation.gettext("Sign in") == "Anmelden"
        assert translation.gettext("Sign out") == "Abmelden"
        assert translation.gettext("Home") == "Startseite"
        assert translation.gettext("Lot number") == "Chargennummer"
        assert translation.gettext("Recall") == "Rückruf"
        one = translation.ngettext("%(counter)s unit", "%(counter)s units", 1)
        many = translation.ngettext("%(counter)s unit", "%(counter)s units", 3)
        assert one % {"counter": 1} == "1 Einheit"
        assert many % {"counter": 3} == "3 Einheiten"
        assert (
            translation.gettext("Lot %(number)s of %(product)s")
            % {"number": "EX-001", "product": "Exo"}
            == "Charge EX-001 von Exo"
        )
        rendered = Template(
            "{% load i18n %}{% translate 'Home' %} · "
            "{% blocktranslate count counter=2 %}{{ counter }} patient"
            "{% plural %}{{ counter }} patients{% endblocktranslate %}"
        ).render(Context())
        assert rendered == "Startseite · 2 Patienten"
    with translation.override("en"):
        assert translation.gettext("Sign in") == "Sign in"

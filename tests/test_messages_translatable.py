"""Refusal messages are translatable (issue 11): every human message a service, selector, validator
or API answer gives is a gettext call with named placeholders, so a German user can read it in
German while the machine code stays the same. Without a German catalog the English text is
unchanged."""

from __future__ import annotations

import ast
import datetime
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from common.errors import DomainError
from common.validators import normalise_gtin, validate_jurisdiction
from lots.scan import scan_parse, scan_resolve
from lots.selectors import lot_release_check
from tests.factories import LotFactory

ROOT = Path(__file__).resolve().parent.parent
SCANNED = (
    "lots",
    "stock",
    "common",
    "signatures",
    "audit",
    "treatments",
    "providers",
    "recalls",
)

GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy"}
# Calls whose message argument a person reads: (position, keyword) of that argument.
MESSAGE_ARGUMENT = {
    "Problem": (1, "message"),
    "DomainError.single": (1, "message"),
    "ValidationError": (0, "message"),
    "NotFound": (0, "detail"),
    "PermissionDenied": (0, "detail"),
    "Http404": (0, None),
    "ParseError": (0, "detail"),
    "ErrorDetail": (0, "string"),
    "add_error": (1, "error"),
}
# Class attributes DRF, Django forms and permissions read their messages from.
MESSAGE_ATTRIBUTES = {"message", "default_error_messages", "default_detail"}
EAGER_GETTEXT = {"_", "gettext", "pgettext"}
# Untranslated messages in files this change may not edit, each named exactly, to be removed when
# the file's owner makes it a gettext call: recalls/models.py is being changed by someone else.
KNOWN_UNTRANSLATED: set[str] = set()
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?([#0\- +]*\d*(?:\.\d+)?[sdifrxXeEgGc%])")


def _call_name(func: ast.expr) -> str | None:
    """`Problem`, `DomainError.single`, and the last part of `serializers.ValidationError`."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and f"{func.value.id}.{func.attr}" in MESSAGE_ARGUMENT:
            return f"{func.value.id}.{func.attr}"
        return func.attr
    return None


def _is_gettext(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _call_name(node.func) in GETTEXT_NAMES


def _untranslated(node: ast.expr) -> list[ast.expr]:
    """The parts of a message expression that reach a person untranslated: string literals,
    f-strings, `"...".format()` and `"..." % x`. A name, attribute or other call is text
    translated where it was made (a variable, `error.messages[0]`, `str(detail)`)."""
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) and node.value.strip() else []
    if isinstance(node, ast.JoinedStr):
        return [node]
    if _is_gettext(node):
        return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return [node] if not _is_gettext(node.left) else []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        # Translated fragments joined together cannot be reordered by a translator either.
        return [node]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, (ast.Constant, ast.JoinedStr))
    ):
        return [node]
    if isinstance(node, ast.IfExp):
        return _untranslated(node.body) + _untranslated(node.orelse)
    if isinstance(node, ast.Dict):  # ValidationError({field: [message]})
        return [bad for value in node.values for bad in _untranslated(value)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [bad for element in node.elts for bad in _untranslated(element)]
    return []


def _message_argument(call: ast.Call, name: str) -> ast.expr | None:
    position, keyword = MESSAGE_ARGUMENT[name]
    for argument in call.keywords:
        if keyword is not None and argument.arg == keyword:
            return argument.value
    if len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        return call.args[position]
    return None


def _sources() -> list[Path]:
    return sorted(
        path
        for directory in SCANNED
        for path in (ROOT / directory).rglob("*.py")
        if "migrations" not in path.parts
    )


def _import_time_nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """Every node evaluated when the module is imported: module and class bodies, not functions
    (default argument values and decorators included)."""
    nodes: list[ast.AST] = []
    for statement in body:
        if isinstance(statement, ast.ClassDef):
            nodes += [*statement.bases, *statement.keywords, *statement.decorator_list]
            nodes += _import_time_nodes(statement.body)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nodes += [*statement.decorator_list, *statement.args.defaults]
            nodes += [default for default in statement.args.kw_defaults if default is not None]
        else:
            nodes.append(statement)
    return nodes


def _class_messages(tree: ast.Module) -> list[ast.expr]:
    return [
        statement.value
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for statement in node.body
        if isinstance(statement, ast.Assign)
        and any(
            isinstance(target, ast.Name) and target.id in MESSAGE_ATTRIBUTES
            for target in statement.targets
        )
    ]


def untranslated_messages(source: str, filename: str = "<source>") -> list[str]:
    """Every message argument of a refusal that is not translatable, as `file:line: code`."""
    tree = ast.parse(source, filename)
    found = [
        f"{filename}:{bad.lineno}: {ast.unparse(bad)[:80]}"
        for value in _class_messages(tree)
        for bad in _untranslated(value)
    ]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node.func)
        if name not in MESSAGE_ARGUMENT:
            continue
        message = _message_argument(node, name)
        if message is None:
            continue
        for bad in _untranslated(message):
            found.append(f"{filename}:{bad.lineno}: {ast.unparse(bad)[:80]}")
    return found


def _lazy_aliases(tree: ast.Module) -> set[str]:
    """Names bound to a lazy gettext (`from django.utils.translation import gettext_lazy as _`, as
    models do for their choice labels): evaluated when read, so fine at import time."""
    return {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
        for alias in node.names
        if alias.asname and alias.name.endswith("_lazy")
    }


def gettext_misuse(source: str, filename: str = "<source>") -> list[str]:
    """gettext calls that extraction or formatting would get wrong: a message that is not one
    string literal (an f-string, a concatenation, a variable), positional placeholders, a `%`
    applied with other names than the message has, or a `%` in a message never formatted."""
    tree = ast.parse(source, filename)
    formatted: dict[int, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_gettext(node.left):
            formatted[id(node.left)] = node.right
    eager = EAGER_GETTEXT - _lazy_aliases(tree)
    found = [
        f"{filename}:{node.lineno}: gettext at import time (use gettext_lazy)"
        for top in _import_time_nodes(tree.body)
        for node in ast.walk(top)
        if isinstance(node, ast.Call) and _call_name(node.func) in eager
    ]
    for node in ast.walk(tree):
        if not _is_gettext(node):
            continue
        assert isinstance(node, ast.Call)
        where = f"{filename}:{node.lineno}"
        msgid = node.args[-1] if node.args else None
        if not (isinstance(msgid, ast.Constant) and isinstance(msgid.value, str)):
            found.append(f"{where}: the message is not a string literal")
            continue
        placeholders = PLACEHOLDER.findall(msgid.value)
        names = {name for name, conversion in placeholders if conversion != "%"}
        values = formatted.get(id(node))
        if values is None:
            if "%" in msgid.value:
                found.append(f"{where}: a % in a message that is never formatted")
        elif any(not name for name, conversion in placeholders if conversion != "%"):
            found.append(f"{where}: a placeholder without a name")
        elif not isinstance(values, ast.Dict) or None in values.keys:
            found.append(f"{where}: formatted with something other than a literal dict")
        elif {key.value for key in values.keys if isinstance(key, ast.Constant)} != names:
            found.append(f"{where}: the values do not match the placeholders {sorted(names)}")
    return found


# ---------------------------------------------------------------------------------------------
# The rule, over the code


def test_every_refusal_message_is_translatable():
    found = [
        problem
        for path in _sources()
        for problem in untranslated_messages(path.read_text(), str(path.relative_to(ROOT)))
        if re.sub(r":\d+:", ":", problem) not in KNOWN_UNTRANSLATED
    ]
    assert found == []


def test_every_gettext_call_extracts_and_formats():
    found = [
        problem
        for path in _sources()
        for problem in gettext_misuse(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


# ---------------------------------------------------------------------------------------------
# The scanner itself: it finds what it should and lets through what it should


@pytest.mark.parametrize(
    "source",
    [
        'Problem("code", f"No {name} result.", "field")',
        'Problem("code", "No result.", "field")',
        'Problem(code="code", message="No result.")',
        'DomainError.single("code", "No result.", field="x")',
        'DomainError.single("code", f"No {x}.", field="x")',
        'DomainError.single("code", "No %s." % x)',
        'DomainError.single("code", "No {}.".format(x))',
        'DomainError.single("code", _("No ") + name)',
        'DomainError.single("code", _("a") if x else "b")',
        'serializers.ValidationError(f"No donor with id {ids}.", code="x")',
        'ValidationError({"field": ["Give a value."]}, code="invalid")',
        'NotFound(f"No such {what}.", code="not_found")',
        'Http404("The file is missing.")',
        'ErrorDetail(f"Use one of: {names}.", code="invalid_choice")',
        'ParseError("JSON parse error - nested too deeply.")',
        'self.form.add_error("record", "Give the record_type too.")',
        'class Field:\n    default_error_messages = {"invalid": "Use true or false."}',
        'class Allowed:\n    message = "For quality managers only."',
    ],
)
def test_the_scanner_finds_an_untranslated_message(source):
    assert len(untranslated_messages(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        'Problem("code", _("No result."), "field")',
        'Problem("code", _("No %(name)s result.") % {"name": name}, "field")',
        'Problem("code", message, "field")',
        "Problem(code=str(code), message=str(detail), field=None)",
        'DomainError.single(error.code, error.messages[0], field="gtin")',
        'DomainError.single("code", too_large, field="file")',
        'DomainError.single("code", _("a") if x else gettext("b"))',
        'ValidationError({"field": [_("Give a value.")]}, code="invalid")',
        'NotFound(_("No such %(what)s.") % {"what": what}, code="not_found")',
        "Http404()",
        "DomainError(problems, status=400)",
        'self.form.add_error("record", _("Give the record_type too."))',
        'class Field:\n    default_error_messages = {"invalid": gettext_lazy("Use true.")}',
        'class Allowed:\n    message = gettext_lazy("For quality managers only.")',
    ],
)
def test_the_scanner_lets_translated_messages_through(source):
    assert untranslated_messages(source) == []


def _in_a_view(expression: str) -> str:
    """The expression as a view would evaluate it: per request, not at import."""
    return f"def view(request):\n    return {expression}\n"


@pytest.mark.parametrize(
    "source",
    [
        *map(
            _in_a_view,
            [
                '_(f"No {name} result.")',
                '_("No " + "result.")',
                "_(message)",
                '_("No %s result.") % name',
                '_("No %(name)s result.") % {"other": name}',
                '_("No %(name)s result.") % values',
                '_("No %(name)s result.")',
                '_("100% sure.")',
            ],
        ),
        'MESSAGE = _("Evaluated once, in the language of whoever imported it.")',
        'class Field:\n    default_error_messages = {"invalid": _("Use true or false.")}',
        'def check(message=gettext("Too early.")):\n    pass',
        'from django.utils.translation import gettext as _\nMESSAGE = _("Evaluated once.")',
    ],
)
def test_the_scanner_finds_gettext_misuse(source):
    assert len(gettext_misuse(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        *map(
            _in_a_view,
            [
                '_("No result.")',
                '_("No %(name)s result.") % {"name": name}',
                '_("100%% sure of %(name)s.") % {"name": name}',
                'gettext_lazy("Give a value.")',
                '_("No result.") + " " if x else y',
            ],
        ),
        'MESSAGE = gettext_lazy("Evaluated when read.")',
        'from django.utils.translation import gettext_lazy as _\nMESSAGE = _("Read later.")',
        'def check():\n    return _("In the language of the request.")',
        'class Field:\n    def clean(self):\n        return _("In the language of the request.")',
    ],
)
def test_the_scanner_lets_well_formed_gettext_through(source):
    assert gettext_misuse(source) == []


# ---------------------------------------------------------------------------------------------
# Under German, without a German catalog: the same codes, the same English text


def _refusal(call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value


def _said(language: str, message: str, **params: str) -> str:
    """`message` as the catalog of `language` gives it (English where it has no entry)."""
    with translation.override(language):
        text = translation.gettext(message)
    return text % params if params else text


def test_a_refusal_reads_in_german_from_the_catalog():
    with translation.override("de"):
        empty = _refusal(scan_parse, "")
    assert empty.problems[0].as_dict() == {
        "code": "scan_malformed",
        "message": "Der Scan ist leer.",
        "field": "scan",
    }


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_scan_refusal_reads_in_the_users_language_with_the_same_code(language):
    with translation.override(language):
        empty = _refusal(scan_parse, "")
        misread = _refusal(scan_parse, "(01)09506000134350(10)A1")
    [problem] = empty.problems
    assert problem.as_dict() == {
        "code": "scan_malformed",
        "message": _said(language, "The scan is empty."),
        "field": "scan",
    }
    assert misread.problems[0].as_dict() == {
        "code": "scan_gtin_invalid",
        "message": _said(
            language,
            "The scanned GTIN %(gtin)s fails the GS1 check digit: misread, scan again.",
            gtin="09506000134350",
        ),
        "field": "scan",
    }
    if language == "en":
        assert misread.problems[0].message == (
            "The scanned GTIN 09506000134350 fails the GS1 check digit: misread, scan again."
        )


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_validator_message_reads_in_the_users_language_with_the_same_code(language):
    with translation.override(language), pytest.raises(ValidationError) as caught:
        validate_jurisdiction("XQ")
    assert caught.value.code == "jurisdiction_unknown"
    assert caught.value.messages == [
        _said(language, "%(value)s is not an ISO 3166 code.", value="XQ")
    ]
    with translation.override(language), pytest.raises(ValidationError) as caught:
        normalise_gtin("12345")
    assert caught.value.messages == [_said(language, "A GTIN is 8, 12, 13 or 14 digits.")]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_release_gate_reads_in_the_users_language_with_the_same_code(language):
    lot = LotFactory(
        manufactured_on=datetime.date(2019, 1, 31), expires_on=datetime.date(2020, 1, 31)
    )
    with translation.override(language):
        check = lot_release_check(lot=lot, on=datetime.date(2020, 2, 1))
        unknown = _refusal(scan_resolve, "(01)09506000134352(10)A1")
    expired = next(p for p in check.problems if p.code == "lot_expired")
    assert expired.as_dict() == {
        "code": "lot_expired",
        "message": _said(language, "The lot expired on %(date)s.", date="2020-01-31"),
        "field": "expires_on",
    }
    assert unknown.problems[0].message == _said(
        language, "No product with GTIN %(gtin)s is registered.", gtin="09506000134352"
    )
    if language == "de":
        assert expired.message == "Die Charge ist am 2020-01-31 verfallen."


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_an_api_refusal_reads_in_the_users_language_with_the_same_code(client, language):
    with translation.override(language):
        response = client.get("/api/v1/no-such-endpoint/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "code": "not_found",
                "message": _said(
                    language, "No API endpoint at %(path)s.", path="/api/v1/no-such-endpoint/"
                ),
                "field": None,
            }
        ]
    }

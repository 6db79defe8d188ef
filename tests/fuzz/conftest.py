"""What the fuzz modules share: one hypothesis profile, and strategies that build hostile bodies.

A body is made from a valid base document by a ``BodyRecipe``: a few ``Mutation``s (a field
deleted, replaced by a wrong type, a boundary value, a nasty string or random JSON, or given
twice as a duplicate key) and then a ``Framing`` of the JSON text (truncated, a BOM, trailing
garbage, nested thousands of levels deep, UTF-16, ...), or simply random bytes. ``Raw`` values
are JSON text written as is where Python's json cannot write them: NaN, numbers too long for
``int()``, exponents beyond every range, deep nesting.

The strategies are data: a module draws a recipe and applies it to the base it builds at test
time (fresh ids, a current timestamp), so one strategy serves the pure and the database tests.
"""

import copy
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from local.loopback import LoopbackServer
from tests.helpers import FakeLambdaContext

# ---------------------------------------------------------------- the profile


def fuzz(max_examples: int) -> settings:
    """Deterministic, no deadline, no example database written into the tree. FUZZ_SCALE=<n>
    in the environment runs n times the examples (a longer hunt than ``make test`` affords)."""
    return settings(
        max_examples=max_examples * max(1, int(os.environ.get("FUZZ_SCALE", "1"))),
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# ---------------------------------------------------------------- JSON text as is


@dataclass(frozen=True)
class Raw:
    """JSON text written as is where a value goes (hypothesis shows it by its text)."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''} len={len(self.text)})"


@dataclass(frozen=True)
class Pairs:
    """An object written with its pairs as given: the same key twice is a duplicate key."""

    items: tuple[tuple[str, Any], ...]


DEEP_LIST = Raw("[" * 3000 + "]" * 3000)
DEEP_OBJECT = Raw('{"a":' * 3000 + "1" + "}" * 3000)
DEEP = (DEEP_LIST, DEEP_OBJECT)

# Numbers any JSON parser reads, whose values stretch every range.
STANDARD_RAW = (
    Raw("1" * 5000),
    Raw("-" + "9" * 4400),
    Raw("0." + "0" * 5000 + "1"),
    Raw("1E400"),
    Raw("-1E400"),
    Raw("1e-400"),
    Raw("123456789012345678901234567890.123456789"),
    Raw("-0"),
    Raw("0e0"),
    Raw("1.0"),
    DEEP_LIST,
    DEEP_OBJECT,
)
# Not JSON (Python's json and pydantic read them anyway), or beyond PostgreSQL numeric's range.
NONSTANDARD_RAW = (
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e999999"),
    Raw("-1e999999"),
    Raw("1e-999999"),
)

LONG_INTS = (STANDARD_RAW[0], STANDARD_RAW[1])


@dataclass(frozen=True)
class Flavor:
    """Which hostile values a parser is fed. A kind that is a known finding of that parser is
    left out of its general properties (the finding has its own xfail test)."""

    nonstandard: bool = True  # NaN, Infinity, exponents beyond PostgreSQL numeric's range
    deep: bool = True  # nesting thousands of levels deep (past Python json's recursion limit)
    long_ints: bool = True  # integers past Python's 4300-digit int() limit

    def raws(self) -> tuple[Raw, ...]:
        kept = tuple(
            raw
            for raw in STANDARD_RAW
            if (self.deep or raw not in DEEP) and (self.long_ints or raw not in LONG_INTS)
        )
        return kept + (NONSTANDARD_RAW if self.nonstandard else ())


ANY = Flavor()
STANDARD = Flavor(nonstandard=False)

BOUNDARY_INTS = (
    0,
    -1,
    1,
    2**15 - 1,
    2**15,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    10**12,
    10**15,
    10**15 + 1,
    -(10**15),
    10**19,
    10**100,
    253_402_300_800_000,  # 10000-01-01 in epoch milliseconds
    -62_135_596_800_001,  # before 0001-01-01 in epoch milliseconds
)
BOUNDARY_FLOATS = (0.0, -0.0, 0.5, 1.5, 0.1, 1e-320, 1e16, 2.5e15, 1e308, -1e308, 1.0000000000000002)
NASTY_STRINGS = (
    "",
    " ",
    "\t\n\r",
    "0",
    "-1",
    "1e5",
    "1_000",
    "NaN",
    "Infinity",
    "sNaN",
    "null",
    "true",
    "[]",
    "{}",
    "\u0000",
    "a\u0000b",
    "\\u0000",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "\u202eevil",
    "\ufeff",
    "e\u0301",
    "İı",
    "ß",
    "Ω≈ç√∫",
    "🙂🙂🙂",
    "١٢٣",
    "１２",
    "' OR '1'='1' --",
    "%s%s%n",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "x" * 256,
    "x" * 321,
    "y" * 5000,
    "9" * 400,
    "COMPLETED",
    "SUCCESS",
    "USD",
    "usd",
    "2026-11-20T15:04:06Z",
    "2026-11-20T15:04:06",
    "2026-02-30T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+00:00",
    "10000-01-01T00:00:00Z",
    "00000000-0000-0000-0000-000000000000",
    "{00000000-0000-4000-8000-000000000000}",
    "urn:uuid:00000000-0000-4000-8000-000000000000",
)


def json_scalars(flavor: Flavor) -> st.SearchStrategy[Any]:
    nonstandard = flavor.nonstandard
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from(BOUNDARY_INTS),
        st.floats(allow_nan=nonstandard, allow_infinity=nonstandard),
        st.sampled_from(BOUNDARY_FLOATS),
        st.text(max_size=30),
        st.sampled_from(NASTY_STRINGS),
        st.sampled_from(flavor.raws()),
    )


def json_values(flavor: Flavor) -> st.SearchStrategy[Any]:
    names = st.text(max_size=8) | st.just("a")
    return st.recursive(
        json_scalars(flavor),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4),
        max_leaves=10,
    )


# ---------------------------------------------------------------- writing JSON


def dumps(value: Any, *, ascii_only: bool = True) -> str:
    """JSON text of a value that may hold Raw and Pairs (NaN and Infinity as Python writes them)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return _object(value.items, ascii_only)
    if isinstance(value, dict):
        return _object(tuple(value.items()), ascii_only)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item, ascii_only=ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _object(items: tuple[tuple[Any, Any], ...], ascii_only: bool) -> str:
    return (
        "{"
        + ",".join(
            f"{json.dumps(str(key), ensure_ascii=ascii_only)}:{dumps(item, ascii_only=ascii_only)}"
            for key, item in items
        )
        + "}"
    )


# ---------------------------------------------------------------- mutations

Path = tuple[str | int, ...]


def paths_of(document: Any, prefix: Path = ()) -> list[Path]:
    """Every path into a document (object keys and list indices), the root first."""
    found: list[Path] = [prefix]
    if isinstance(document, dict):
        for key, item in document.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found += paths_of(item, (*prefix, index))
    return found


@dataclass(frozen=True)
class Mutation:
    """One change at one path: delete, replace, add a ``key`` to the object there, or a duplicate
    key whose first (``dup_first``) or last (``dup_last``) occurrence holds the value."""

    path: Path
    action: str
    value: Any = None
    key: str = "x_fuzz"

    def apply(self, document: Any) -> Any:
        if self.action == "add":
            return self._add(document)
        if not self.path:
            return document if self.action == "delete" else self.value
        document = copy.deepcopy(document)
        *parents, last = self.path
        holder = document
        for step in parents:
            try:
                holder = holder[step]
            except (KeyError, IndexError, TypeError):
                return document  # an earlier mutation removed the path
        if isinstance(holder, dict) and isinstance(last, str):
            return self._in_object(document, parents, holder, last)
        if isinstance(holder, list) and isinstance(last, int) and last < len(holder):
            if self.action == "delete":
                del holder[last]
            else:
                holder[last] = self.value
        return document

    def _add(self, document: Any) -> Any:
        document = copy.deepcopy(document)
        try:
            target = at_path(document, self.path)
        except (KeyError, IndexError, TypeError):
            return document
        if isinstance(target, dict):
            target[self.key] = self.value
        return document

    def _in_object(self, document: Any, parents: list[str | int], holder: dict[str, Any], key: str) -> Any:
        if self.action == "delete":
            holder.pop(key, None)
            return document
        if self.action == "replace" or key not in holder:
            holder[key] = self.value
            return document
        items = list(holder.items())
        position = [k for k, _ in items].index(key)
        pair = [(key, self.value), (key, holder[key])]
        if self.action == "dup_last":
            pair.reverse()
        duplicated = Pairs(tuple(items[:position] + pair + items[position + 1 :]))
        return Mutation(tuple(parents), "replace", duplicated).apply(document) if parents else duplicated


def at_path(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


def values_like(original: Any, flavor: Flavor) -> st.SearchStrategy[Any]:
    """Values of the original's JSON type that stretch it (a wrong value, not a wrong type)."""
    nonstandard = flavor.nonstandard
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return st.one_of(
            st.sampled_from(BOUNDARY_INTS),
            st.integers(original - 2, original + 2),
            st.integers(),
            st.floats(allow_nan=nonstandard, allow_infinity=nonstandard),
            st.just(float(original)),
            st.just(str(original)),
        )
    if isinstance(original, float):
        return st.floats(allow_nan=nonstandard, allow_infinity=nonstandard) | st.sampled_from(BOUNDARY_FLOATS)
    if isinstance(original, str):
        return st.one_of(
            st.sampled_from(NASTY_STRINGS),
            st.text(max_size=30),
            st.sampled_from(
                (
                    original.lower(),
                    original.upper(),
                    f" {original} ",
                    original + "\u0000",
                    original + "é",
                    original * 30,
                    original[:1],
                )
            ),
        )
    return json_values(Flavor(nonstandard=nonstandard, deep=False, long_ints=flavor.long_ints))


def mutations(
    template: Any,
    flavor: Flavor,
    *,
    min_mutations: int = 1,
    max_mutations: int = 3,
    extra: Sequence[Any] = (),
    under: Path = (),
) -> st.SearchStrategy[tuple[Mutation, ...]]:
    """Up to ``max_mutations`` changes at paths of the template's shape (those ``under`` a path):
    half of the values of the field's own JSON type, half anything (random JSON, boundary values,
    ``extra``)."""
    anything = json_values(flavor) | st.sampled_from(tuple(extra) or (None,))
    actions = st.sampled_from(("replace",) * 5 + ("delete", "delete", "dup_first", "dup_last", "dup_last"))

    def at(path: Path) -> st.SearchStrategy[Mutation]:
        original = at_path(template, path)
        if isinstance(original, dict):
            # An object: a field added (unknown to the parser) as often as the object changed.
            keys = st.text(max_size=8) | st.sampled_from(tuple(original) or ("a",))
            added = st.builds(Mutation, st.just(path), st.just("add"), anything, keys)
            return added | st.builds(Mutation, st.just(path), actions, anything)
        like = values_like(original, flavor)
        return st.builds(Mutation, st.just(path), actions, like | anything)

    paths = [path for path in paths_of(template) if path[: len(under)] == under]
    one = st.one_of([at(path) for path in paths])
    return st.lists(one, min_size=min_mutations, max_size=max_mutations).map(tuple)


# ---------------------------------------------------------------- framing the text

FRAMINGS = ("plain",) * 6 + ("truncate", "bom", "trailing", "wrap_deep", "whitespace", "utf16")
MAX_WRAP_DEPTH = 5000
TRAILING = (b"}", b"]", b" x", b"\x00", b",{}", b"\n\n{}", b"\xff")


@dataclass(frozen=True)
class Framing:
    kind: str
    ascii_only: bool
    amount: int

    def encode(self, document: Any) -> bytes:
        text = dumps(document, ascii_only=self.ascii_only)
        body = text.encode("utf-8", "surrogatepass")
        match self.kind:
            case "truncate":
                return body[: self.amount % max(len(body), 1)]
            case "bom":
                return b"\xef\xbb\xbf" + body
            case "trailing":
                return body + TRAILING[self.amount % len(TRAILING)]
            case "wrap_deep":
                depth = 1 + self.amount % MAX_WRAP_DEPTH
                return b"[" * depth + body + b"]" * depth
            case "whitespace":
                return b" \n\t\r" + body + b"\r\n"
            case "utf16":
                return text.encode("utf-16", "surrogatepass")
        return body


def framings(flavor: Flavor) -> st.SearchStrategy[Framing]:
    """Without ``flavor.deep``: a wrap at most 400 levels deep (below every recursion limit)."""
    amounts = st.integers(0, 10**6).map(lambda n: n if flavor.deep else n % 400)
    return st.builds(Framing, st.sampled_from(FRAMINGS), st.booleans(), amounts)


@dataclass(frozen=True)
class BodyRecipe:
    """How to make a hostile body out of a base document (or random bytes, ignoring it)."""

    mutations: tuple[Mutation, ...] = ()
    framing: Framing = field(default_factory=lambda: Framing("plain", True, 0))
    raw: bytes | None = None

    def document(self, base: Any) -> Any:
        for mutation in self.mutations:
            base = mutation.apply(base)
        return base

    def body(self, base: Any) -> bytes:
        if self.raw is not None:
            return self.raw
        return self.framing.encode(self.document(base))


def recipes(
    template: Any,
    flavor: Flavor,
    *,
    max_mutations: int = 3,
    extra: Sequence[Any] = (),
    under: Path = (),
    whole_body: bool = True,
    min_mutations: int = 0,
) -> st.SearchStrategy[BodyRecipe]:
    """Random bytes, random JSON, or the template mutated and framed. ``whole_body=False``: only
    the template mutated ``under`` a path, as plain JSON (to reach what lies behind the body's
    own checks)."""
    changes = mutations(
        template,
        flavor,
        min_mutations=min_mutations,
        max_mutations=max_mutations,
        extra=extra,
        under=under,
    )
    if not whole_body:
        return st.builds(BodyRecipe, changes, st.builds(Framing, st.just("plain"), st.booleans(), st.just(0)))
    mutated = st.builds(BodyRecipe, changes, framings(flavor))
    random_json = st.builds(
        lambda value, framing: BodyRecipe((Mutation((), "replace", value),), framing),
        json_values(flavor),
        framings(flavor),
    )
    random_bytes = st.builds(lambda data: BodyRecipe(raw=data), st.binary(max_size=200))
    return st.one_of(mutated, mutated, mutated, random_json, random_bytes)


# ---------------------------------------------------------------- the documented refusal


def attempt[T, E: Exception](call: Callable[[], T], refusal: type[E]) -> T | E:
    """The call's result, or the documented refusal it raised (any other exception propagates:
    that is the crash the fuzzing looks for)."""
    try:
        return call()
    except refusal as refused:
        return refused


def assert_error_body(body: Any) -> None:
    """The machine-readable refusal: {"error": {"code", "message", "fields"}}."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str), body
    assert error["code"], body
    assert isinstance(error.get("message"), str), body
    assert isinstance(error.get("fields"), list), body


# ---------------------------------------------------------------- a provider that answers anything


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    method: str
    path: str  # with its query string
    body: bytes


class ScriptedServer(LoopbackServer):
    """A provider on loopback whose every answer is what ``answer`` says (the test sets it for
    each example); ``seen`` keeps every request."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answer: Callable[[Seen], Reply] = lambda seen: Reply(404, b"{}")
        self._lock = threading.Lock()
        super().__init__(self._handler(), "127.0.0.1", 0, "fuzz-provider")

    def script(self, answer: Callable[[Seen], Reply]) -> None:
        with self._lock:
            self.answer = answer
            self.seen.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(method, self.path, self.rfile.read(length))
                with server._lock:
                    server.seen.append(seen)
                    answer = server.answer
                reply = answer(seen)
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: hypothesis sends thousands of requests

        return Handler


@dataclass(frozen=True)
class Webhook:
    """A webhook function's handler (tests.helpers.deployed_webhook) and the merchant it serves."""

    module: ModuleType
    merchant_id: str

    def call(self, event: dict[str, Any]) -> tuple[int, Any]:
        function_name = self.module.__name__.split(".")[1]  # functions.<name>.app
        response = self.module.lambda_handler(event, FakeLambdaContext(function_name=function_name))
        return int(response["statusCode"]), json.loads(response["body"])

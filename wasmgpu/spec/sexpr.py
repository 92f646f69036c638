"""A small, fast S-expression reader for WebAssembly script (.wast) files.

The reader produces plain Python objects, so the runner can dispatch on them
cheaply:

* a list is an :class:`SList` (a ``list`` subclass that remembers the source
  span it came from, because text modules are handed to ``wat2wasm`` verbatim);
* an atom (keyword, number, ``$id``) is a ``str``;
* a quoted string is ``bytes`` (wast strings may hold arbitrary bytes through
  ``\\hh`` escapes, e.g. in binary modules and names).

Comments (``;;`` to end of line, nested ``(; ... ;)``) are dropped.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from wasmgpu.errors import WasmGpuError


class SExprError(WasmGpuError):
    """Text that is not a well-formed S-expression script."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.message = message
        self.line = line


class SList(list):
    """A parenthesized list, with the offsets of its '(' and one past its ')'."""

    __slots__ = ("start", "end")

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = start
        self.end = start

    def head(self) -> str | None:
        """The leading keyword (``module``, ``assert_return`` ...), if the list starts with an atom."""
        if self and isinstance(self[0], str):
            return self[0]
        return None


Node = str | bytes | SList

# One token, after skipping whitespace and line comments. Only one group takes
# part in each match, so ``lastindex`` tells the kind without string compares.
# The order matters: "(;" before "(", strings before atoms.
_TOKEN = re.compile(
    r"""(?:\s+|;;[^\n]*)*
    (?:
      (\(;)                       # 1: block comment start
     |(\()                        # 2: open
     |(\))                        # 3: close
     |("(?:[^"\\]|\\.)*")         # 4: string (escapes decoded separately)
     |((?:[^\s()";]|;(?!;))+)     # 5: atom (a lone ";" is a reserved token's character)
     |(\Z)                        # 6: end of text
     |(.)                         # 7: anything else: an error
    )""",
    re.VERBOSE | re.DOTALL,
)
_BLOCK_COMMENT_PART = re.compile(r"\(;|;\)")
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{2})|u\{([0-9a-fA-F](?:_?[0-9a-fA-F])*)\}|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "'": b"'", '"': b'"'}


def unescape(body: str) -> bytes:
    """The bytes a wast string denotes (``body`` without the surrounding quotes).

    Raises ValueError on an unknown escape or a code point out of range.
    """
    if "\\" not in body:
        return body.encode("utf-8", "surrogateescape")
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        out += body[pos : m.start()].encode("utf-8", "surrogateescape")
        pos = m.end()
        hexbyte, codepoint, other = m.groups()
        if hexbyte is not None:
            out.append(int(hexbyte, 16))
        elif codepoint is not None:
            cp = int(codepoint.replace("_", ""), 16)
            if cp >= 0x110000 or 0xD800 <= cp < 0xE000:
                raise ValueError(f"invalid code point \\u{{{codepoint}}}")
            out += chr(cp).encode("utf-8")
        elif other in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[other]
        else:
            raise ValueError(f"unknown escape \\{other}")
    out += body[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


@dataclass
class Document:
    """A parsed script: its top-level nodes and the text they came from."""

    text: str
    items: list[Node]
    _newlines: list[int] | None = field(default=None, repr=False)

    def line_of(self, offset: int) -> int:
        """1-based line number of a character offset."""
        if self._newlines is None:  # only built when a message needs a line
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1

    def source(self, node: SList) -> str:
        """The exact source text of a list, parentheses included."""
        return self.text[node.start : node.end]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _skip_block_comment(text: str, pos: int) -> int:
    """Offset just past the block comment whose "(;" ends at ``pos``; comments nest."""
    depth = 1
    while depth:
        m = _BLOCK_COMMENT_PART.search(text, pos)
        if m is None:
            raise SExprError("unterminated block comment", _line(text, pos))
        depth += 1 if m.group() == "(;" else -1
        pos = m.end()
    return pos


def parse(text: str) -> Document:
    """Parse a whole script. Raises SExprError with a line number on bad text."""
    top: list[Node] = []
    stack: list[SList] = []
    current: list[Node] = top
    pos = 0
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        assert m is not None  # group 7 matches any character, group 6 the end
        kind = m.lastindex
        pos = m.end()
        if kind == 5:
            current.append(m.group(5))
        elif kind == 2:
            lst = SList(m.start(2))
            current.append(lst)
            stack.append(lst)
            current = lst
        elif kind == 3:
            if not stack:
                raise SExprError("unexpected ')'", _line(text, m.start(3)))
            lst = stack.pop()
            lst.end = pos
            current = stack[-1] if stack else top
            if lst and isinstance(lst[0], str) and lst[0].startswith("@"):
                current.pop()  # an annotation: no meaning to a script (text modules keep theirs in their text)
        elif kind == 4:
            raw = m.group(4)
            try:
                current.append(unescape(raw[1:-1]))
            except ValueError as e:
                raise SExprError(str(e), _line(text, m.start(4))) from None
        elif kind == 1:
            pos = _skip_block_comment(text, pos)
        elif kind == 6:
            break
        else:
            start = m.start(7)
            what = "unterminated string" if text[start] == '"' else f"unexpected character {text[start]!r}"
            raise SExprError(what, _line(text, start))
    if stack:
        raise SExprError("unclosed '('", _line(text, stack[-1].start))
    return Document(text, top)


def parse_file(path: str) -> Document:
    """Read and parse a .wast file. Invalid UTF-8 survives as surrogate escapes."""
    with open(path, "rb") as f:
        data = f.read()
    return parse(data.decode("utf-8", "surrogateescape"))

"""A minimal .wast scanner for tests: balanced parentheses, strings and comments.

It builds a tree of spans over the script text, which is all the validator
tests need to pick out modules and assertions; it does not interpret anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    """A parenthesised form (``kind == "list"``), an atom, or a string, as a span of the text."""

    kind: str  # "list", "atom", "string"
    start: int
    end: int
    children: list[Node] = field(default_factory=list)


class ScanError(ValueError):
    pass


def _skip_block_comment(text: str, i: int) -> int:
    # Block comments nest: (; ... (; ... ;) ... ;)
    depth = 0
    n = len(text)
    while i < n:
        if text.startswith("(;", i):
            depth += 1
            i += 2
        elif text.startswith(";)", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise ScanError("unterminated block comment")


def parse(text: str) -> list[Node]:
    """The top-level forms of a script."""
    root = Node("list", 0, len(text))
    stack = [root]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif text.startswith(";;", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("(;", i):
            i = _skip_block_comment(text, i)
        elif ch == "(":
            node = Node("list", i, -1)
            stack[-1].children.append(node)
            stack.append(node)
            i += 1
        elif ch == ")":
            if len(stack) == 1:
                raise ScanError(f"unbalanced ')' at {i}")
            stack.pop().end = i + 1
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ScanError("unterminated string")
            stack[-1].children.append(Node("string", i, j + 1))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n()";':
                j += 1
            if j == i:  # a lone ';' that starts no comment
                j += 1
            stack[-1].children.append(Node("atom", i, j))
            i = j
    if len(stack) != 1:
        raise ScanError("unbalanced '('")
    return root.children


def string_bytes(text: str, node: Node) -> bytes:
    """The bytes a string literal denotes (escapes \\n \\t \\r \\\\ \\' \\" \\hh \\u{...})."""
    s = text[node.start + 1:node.end - 1]
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        e = s[i + 1]
        if e in "nrt\\'\"":
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", "'": b"'", '"': b'"'}[e]
            i += 2
        elif e == "u":
            j = s.index("}", i)
            out += chr(int(s[i + 3:j].replace("_", ""), 16)).encode("utf-8")
            i = j + 1
        else:
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
    return bytes(out)


def head(text: str, node: Node) -> str:
    """The first atom of a list form ('' if none)."""
    if node.kind == "list" and node.children and node.children[0].kind == "atom":
        c = node.children[0]
        return text[c.start:c.end]
    return ""


def module_form(text: str, node: Node) -> tuple[str, object]:
    """Classify a ``(module ...)`` form: ("binary", bytes), ("quote", None) or ("text", source)."""
    rest = node.children[1:]
    if rest and rest[0].kind == "atom" and text[rest[0].start] == "$":
        rest = rest[1:]
    if rest and rest[0].kind == "atom":
        word = text[rest[0].start:rest[0].end]
        if word == "binary":
            return "binary", b"".join(string_bytes(text, c) for c in rest[1:] if c.kind == "string")
        if word == "quote":
            return "quote", None
    return "text", text[node.start:node.end]

"""Read the repository's deployment files into plain Python values.

Used by test_consistency.py (and, through it, test_negative.py). Everything here is a reader:
no check lives in this module. Readers never guess: a file or value that is missing comes back
as None / empty, and the checks decide what that means.

- Bicep: a small reader for the literal parts of resource and module bodies. Unlike pycep it
  keeps the difference between a string literal ('pubsub') and an expression (pubsubName), so
  values can be compared with the Rust code. Anything that is not a literal is an `Expr`.
- Rust: `const NAME: T = value;` items of `<crate>/src/config.rs`.
- Dockerfiles, azure.yaml, dapr.yaml, components/*.yaml, Cargo.toml.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class Expr(str):
    """A Bicep expression that is not a literal (parameter, variable, function call...)."""

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"


# --------------------------------------------------------------------------------------------
# Bicep
# --------------------------------------------------------------------------------------------


class BicepSyntaxError(ValueError):
    pass


class _Reader:
    """Recursive-descent reader for Bicep object/array literals (multi-line form)."""

    def __init__(self, text: str, pos: int) -> None:
        self.s = text
        self.i = pos

    def _skip(self, newlines: bool = True) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif s.startswith("//", self.i):
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            elif s.startswith("/*", self.i):
                end = s.find("*/", self.i)
                if end < 0:
                    raise BicepSyntaxError("unterminated block comment")
                self.i = end + 2
            else:
                return

    def _rest_of_expression(self) -> str:
        """Raw text up to the end of the line, keeping brackets balanced (may span lines)."""
        s, start, depth, quote = self.s, self.i, 0, False
        while self.i < len(s):
            c = s[self.i]
            if quote:
                if c == "\\":
                    self.i += 1
                elif c == "'":
                    quote = False
            elif c == "'":
                quote = True
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (c == "\n" or s.startswith("//", self.i)):
                break
            self.i += 1
        return s[start : self.i].strip()

    def _string(self) -> str:
        s = self.s
        assert s[self.i] == "'"
        self.i += 1
        out = []
        while self.i < len(s):
            c = s[self.i]
            if c == "\\" and self.i + 1 < len(s):
                out.append(
                    {"'": "'", "\\": "\\", "n": "\n", "t": "\t", "$": "$"}.get(
                        s[self.i + 1], s[self.i + 1]
                    )
                )
                self.i += 2
                continue
            if c == "'":
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise BicepSyntaxError("unterminated string")

    def value(self):
        self._skip()
        s = self.s
        if s[self.i] == "{":
            return self.obj()
        if s[self.i] == "[":
            start = self.i
            self.i += 1
            self._skip(newlines=False)
            if s.startswith("for ", self.i):  # loop expression: keep raw
                self.i = start
                return Expr(self._rest_of_expression())
            self.i = start
            return self.arr()
        start = self.i
        raw = self._rest_of_expression()
        if raw.startswith("'") and "${" not in raw:
            self.i = start
            lit = self._string()
            tail_start = self.i
            tail = self._rest_of_expression()
            if not tail:
                return lit
            self.i = tail_start
            return Expr(raw)
        if re.fullmatch(r"-?\d+", raw):
            return int(raw)
        if raw in ("true", "false"):
            return raw == "true"
        if raw == "null":
            return None
        return Expr(raw)

    def _key(self) -> str:
        s = self.s
        if s[self.i] == "'":
            return self._string()
        m = re.compile(r"[A-Za-z_$][\w$]*").match(s, self.i)
        if not m:
            raise BicepSyntaxError(
                f"expected a property name at offset {self.i}: {s[self.i : self.i + 30]!r}"
            )
        self.i = m.end()
        return m.group(0)

    def obj(self) -> dict:
        assert self.s[self.i] == "{"
        self.i += 1
        out: dict = {}
        while True:
            self._skip()
            if self.i >= len(self.s):
                raise BicepSyntaxError("unterminated object")
            if self.s[self.i] == "}":
                self.i += 1
                return out
            if self.s[self.i] == ",":
                self.i += 1
                continue
            key = self._key()
            self._skip(newlines=False)
            if self.s[self.i] != ":":
                raise BicepSyntaxError(f"expected ':' after {key!r}")
            self.i += 1
            out[key] = self.value()

    def arr(self) -> list:
        assert self.s[self.i] == "["
        self.i += 1
        out: list = []
        while True:
            self._skip()
            if self.i >= len(self.s):
                raise BicepSyntaxError("unterminated array")
            if self.s[self.i] == "]":
                self.i += 1
                return out
            if self.s[self.i] == ",":
                self.i += 1
                continue
            out.append(self.value())


_DECL = re.compile(
    r"^(?P<kind>resource|module)\s+(?P<sym>\w+)\s+'(?P<ref>[^']+)'\s*(?P<existing>existing\s*)?=\s*"
    r"(?P<cond>if\s*\((?P<condexpr>[^\n]*)\)\s*)?\{",
    re.MULTILINE,
)


@dataclass
class BicepDecl:
    kind: str  # resource | module
    symbol: str
    ref: str  # 'Type@version' or module path
    existing: bool
    condition: str | None
    body: dict

    @property
    def type(self) -> str:
        return self.ref.split("@")[0]

    @property
    def api_version(self) -> str:
        return self.ref.split("@")[1] if "@" in self.ref else ""


@dataclass
class BicepFile:
    path: Path
    text: str
    decls: list[BicepDecl] = field(default_factory=list)
    params: dict[str, tuple[str, object]] = field(default_factory=dict)  # name -> (type, default)
    vars: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> raw expression

    def resources(self, type_: str | None = None) -> list[BicepDecl]:
        return [
            d for d in self.decls if d.kind == "resource" and (type_ is None or d.type == type_)
        ]

    def modules(self) -> list[BicepDecl]:
        return [d for d in self.decls if d.kind == "module"]


def read_bicep(path: Path) -> BicepFile:
    text = path.read_text()
    bf = BicepFile(path=path, text=text)
    for m in _DECL.finditer(text):
        reader = _Reader(text, m.end() - 1)
        body = reader.obj()
        bf.decls.append(
            BicepDecl(
                kind=m["kind"],
                symbol=m["sym"],
                ref=m["ref"],
                existing=bool(m["existing"]),
                condition=m["condexpr"],
                body=body,
            )
        )
    for m in re.finditer(r"^param\s+(\w+)\s+(\w+)(?:\s*=\s*(.+))?$", text, re.MULTILINE):
        default = None
        if m[3] is not None:
            default = _Reader(m[3], 0).value()
        bf.params[m[1]] = (m[2], default)
    for m in re.finditer(r"^var\s+(\w+)\s*=\s*", text, re.MULTILINE):
        bf.vars[m[1]] = _Reader(text, m.end()).value()
    for m in re.finditer(r"^output\s+(\w+)\s+[\w\[\]]+\s*=\s*(.+)$", text, re.MULTILINE):
        bf.outputs[m[1]] = m[2].strip()
    return bf


def get(obj, *path, default=None):
    """Nested lookup through dicts (str keys) and lists (int keys)."""
    cur = obj
    for p in path:
        if (isinstance(p, int) and isinstance(cur, list) and -len(cur) <= p < len(cur)) or (
            isinstance(cur, dict) and p in cur
        ):
            cur = cur[p]
        else:
            return default
    return cur


def env_list(container: dict) -> dict:
    """Container `env` array as {name: value} (literal values only, else Expr)."""
    out = {}
    for e in get(container, "env", default=[]) or []:
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            out[e["name"]] = e.get("value", e.get("secretRef"))
    return out


def metadata_list(component_props: dict) -> dict:
    out = {}
    for e in get(component_props, "metadata", default=[]) or []:
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            out[e["name"]] = e.get("value")
    return out


# --------------------------------------------------------------------------------------------
# Rust
# --------------------------------------------------------------------------------------------

_CONST = re.compile(
    r"^\s*(?:pub(?:\([\w\s:]+\))?\s+)?const\s+([A-Z][A-Z0-9_]*)\s*:\s*([^=;]+?)\s*=\s*(.+?)\s*;",
    re.MULTILINE | re.DOTALL,
)


def rust_consts(path: Path) -> dict[str, object]:
    """`const NAME: T = value;` items whose value is a string or integer literal, or a
    `Duration::from_secs(n)` of a literal (as its seconds)."""
    out: dict[str, object] = {}
    text = _strip_rust_comments(path.read_text())
    for m in _CONST.finditer(text):
        raw = m[3].strip()
        sm = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', raw)
        if sm:
            out[m[1]] = sm[1]
            continue
        im = re.fullmatch(r"(\d[\d_]*)(?:_?[ui](?:8|16|32|64|128|size))?", raw)
        if im:
            out[m[1]] = int(im[1].replace("_", ""))
            continue
        dm = re.fullmatch(r"Duration::from_secs\((\d[\d_]*)\)", raw)
        if dm:
            out[m[1]] = int(dm[1].replace("_", ""))
    return out


def _strip_rust_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def rust_string_literals(paths: list[Path]) -> set[str]:
    lits: set[str] = set()
    for p in paths:
        for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', _strip_rust_comments(p.read_text())):
            lits.add(m[1])
    return lits


def cargo_toml(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return tomllib.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


@dataclass
class Dockerfile:
    path: Path
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuation lines joined
    comments: list[str]

    def all(self, instr: str) -> list[str]:
        return [a for i, a in self.instructions if i == instr]

    def stages(self) -> list[list[tuple[str, str]]]:
        out: list[list[tuple[str, str]]] = []
        for ins in self.instructions:
            if ins[0] == "FROM":
                out.append([])
            if out:
                out[-1].append(ins)
        return out

    def cargo_build_commands(self) -> list[str]:
        """Every `cargo build ...` command in a RUN (split on && / ;)."""
        cmds = []
        for arg in self.all("RUN"):
            for part in re.split(r"&&|;|\|\|", arg):
                part = part.strip()
                if re.match(r"cargo\s+build\b", part):
                    cmds.append(part)
        return cmds


def read_dockerfile(path: Path) -> Dockerfile:
    instructions: list[tuple[str, str]] = []
    comments: list[str] = []
    buf = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not buf and stripped.startswith("#"):
            comments.append(stripped)
            continue
        if not stripped and not buf:
            continue
        if stripped.startswith("#"):  # comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        parts = buf.split(None, 1)
        instructions.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        buf = ""
    if buf:
        parts = buf.split(None, 1)
        instructions.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return Dockerfile(path=path, instructions=instructions, comments=comments)


def cargo_args(cmd: str) -> dict:
    """Parse `cargo build` flags we care about."""
    toks = shlex.split(cmd)
    out = {
        "release": "--release" in toks or "-r" in toks,
        "locked": "--locked" in toks,
        "packages": [],
    }
    for i, t in enumerate(toks):
        if t in ("-p", "--package") and i + 1 < len(toks):
            out["packages"].append(toks[i + 1])
        elif t.startswith("--package="):
            out["packages"].append(t.split("=", 1)[1])
    return out


# --------------------------------------------------------------------------------------------
# YAML / JSON
# --------------------------------------------------------------------------------------------


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def load_json(path: Path):
    return json.loads(path.read_text())


def azd_env_key(service: str) -> str:
    """azd's environment.Key(): upper case, '-' -> '_'."""
    return re.sub(r"[^A-Za-z0-9]", "_", service).upper()

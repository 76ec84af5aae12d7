"""The public serving and client API keeps its docstrings (issue 26).

Every public module-level function and class of serving/ (test modules aside), and every public
method of a public class, has a docstring; the client API (serving/client.py), which
applications import, names each of its parameters there: a function's or method's in its own
docstring or its class's, a constructor's (or a dataclass's fields) in the class docstring.

The modules are read with `ast`, never imported: no TensorFlow, no gRPC.
"""
from __future__ import annotations

import ast
import glob
import os
import re
import textwrap
from typing import Iterator, List, Optional, Tuple

SERVING_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SERVING_DIR)
CLIENT_MODULE = os.path.join(SERVING_DIR, "client.py")

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _modules() -> List[str]:
    return sorted(path for path in glob.glob(os.path.join(SERVING_DIR, "*.py"))
                  if not path.endswith("_test.py") and os.path.basename(path) != "conftest.py")


def _public_api(tree: ast.Module) -> Iterator[Tuple[ast.AST, Optional[ast.ClassDef], str]]:
    """(node, its class or None, qualified name) of each public module-level function and class
    and each public method of a public class."""
    for node in tree.body:
        if not isinstance(node, _DEFINITIONS) or not _public(node.name):
            continue
        yield node, None, node.name
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, _FUNCTIONS) and _public(member.name):
                    yield member, node, f"{node.name}.{member.name}"


def missing_docstrings(source: str, filename: str = "<source>") -> List[str]:
    """`file:line name` of each public definition of `source` without a docstring."""
    tree = ast.parse(source, filename)
    return [f"{filename}:{node.lineno} {name}" for node, _, name in _public_api(tree)
            if not (ast.get_docstring(node) or "").strip()]


def _parameters(function: ast.AST) -> List[str]:
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return [n for n in names if n not in ("self", "cls")]


def _mentions(docstring: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", docstring) is not None


def _is_dataclass(node: ast.ClassDef) -> bool:
    def name(decorator):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return any(name(d) == "dataclass" for d in node.decorator_list)


def _fields(node: ast.ClassDef) -> List[str]:
    return [s.target.id for s in node.body
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]


def undocumented_parameters(source: str, filename: str = "<source>") -> List[str]:
    """`file:line name: parameter` of each parameter of a public function or method (and of a
    public class's constructor, or a public dataclass's field) of `source` that its docstring
    does not name, nor, for a method or a constructor, its class's docstring."""
    tree = ast.parse(source, filename)
    problems = []

    def check(node, names, name, *docstrings):
        text = "\n".join(d or "" for d in docstrings)
        problems.extend(f"{filename}:{node.lineno} {name}: {p}" for p in names
                        if not _mentions(text, p))

    for node, owner, name in _public_api(tree):
        if isinstance(node, ast.ClassDef):
            init = next((m for m in node.body
                         if isinstance(m, _FUNCTIONS) and m.name == "__init__"), None)
            if init is not None:
                check(init, _parameters(init), f"{name}.__init__", ast.get_docstring(node),
                      ast.get_docstring(init))
            elif _is_dataclass(node):
                check(node, _fields(node), name, ast.get_docstring(node))
            continue
        class_doc = ast.get_docstring(owner) if owner is not None else None
        check(node, _parameters(node), name, ast.get_docstring(node), class_doc)
    return problems


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _relative(path: str) -> str:
    return os.path.relpath(path, REPO_ROOT)


# --- the repository ---------------------------------------------------------------------------

def test_the_serving_modules_are_found():
    names = {os.path.basename(p) for p in _modules()}
    assert {"client.py", "server.py", "errors.py", "limits.py"} <= names
    assert not any(n.endswith("_test.py") or n == "conftest.py" for n in names)


def test_every_public_function_class_and_method_of_serving_has_a_docstring():
    missing = [m for path in _modules() for m in missing_docstrings(_read(path), _relative(path))]
    assert not missing, ("public serving API without a docstring (say what it does, its "
                         "arguments, what it returns or raises):\n  " + "\n  ".join(missing))


def test_the_client_api_docstrings_name_every_parameter():
    problems = undocumented_parameters(_read(CLIENT_MODULE), _relative(CLIENT_MODULE))
    assert not problems, ("serving/client.py: parameters no docstring names (a method's in "
                          "its own docstring or its class's, a constructor's in the class "
                          "docstring):\n  " + "\n  ".join(problems))


# --- the checker itself, on synthetic sources --------------------------------------------------

_SOURCE = textwrap.dedent('''
    def documented():
        """Does a thing."""

    def undocumented():
        pass

    def _private():
        pass

    class Public:
        """A class."""

        def method(self):
            pass

        def _helper(self):
            pass

        def __init__(self):
            pass

    class Bare:
        def fine(self):
            """Documented."""

    class _Hidden:
        def method(self):
            pass
''')


def test_the_checker_reports_each_missing_docstring_and_nothing_else():
    assert missing_docstrings(_SOURCE, "m.py") == [
        "m.py:5 undocumented", "m.py:14 Public.method", "m.py:23 Bare"]


def test_the_checker_passes_documented_source_and_sees_an_empty_docstring_as_missing():
    assert missing_docstrings('def f():\n    """Does f."""\n') == []
    assert missing_docstrings('def f():\n    """ """\n') == ["<source>:1 f"]
    assert missing_docstrings("async def f():\n    pass\n") == ["<source>:1 f"]


_CLIENT_LIKE = textwrap.dedent('''
    from dataclasses import dataclass

    class Client:
        """Talks to a server at `target`."""

        def __init__(self, target, timeout_s=1.0):
            pass

        def predict(self, images, batch_size=32):
            """Classifies `images`."""

        def close(self):
            """Closes it."""

    @dataclass
    class Policy:
        """Tries `attempts` times."""
        attempts: int = 1
        backoff_s: float = 0.1

    def connect(protocol, server=None, **options):
        """A client for `protocol` at `server`; `options` go to its constructor."""
''')


def test_the_parameter_check_reports_each_unnamed_parameter_and_nothing_else():
    assert undocumented_parameters(_CLIENT_LIKE, "c.py") == [
        "c.py:7 Client.__init__: timeout_s", "c.py:10 Client.predict: batch_size",
        "c.py:17 Policy: backoff_s"]


def test_the_parameter_check_reads_the_class_docstring_and_whole_words_only():
    method = ('class C:\n    """Sends `batch_size` at most."""\n'
              '    def predict(self, images, batch_size=1):\n'
              '        """Classifies the images_list."""\n')
    assert undocumented_parameters(method) == ["<source>:3 C.predict: images"]

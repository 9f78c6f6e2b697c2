"""raggio runs on the oldest Python that pyproject.toml declares, Ray 2.60's 3.10.

CI runs one newer interpreter, so these checks are static: `vermin` reads every module for
language features, standard-library names and keyword arguments newer than the minimum, and
a small AST check catches the one 3.10 difference vermin cannot see (below).
"""

import ast
import pathlib
import re
import subprocess
import sys

#: The oldest Python raggio supports: Ray 2.60's.
MINIMUM_PYTHON = (3, 10)

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The code that runs on a user's Python: the package, its tests and the README's example.
CHECKED_DIRS = ("raggio", "tests", "examples")


def test_pyproject_declares_the_minimum_these_checks_prove():
    pyproject = (ROOT / "pyproject.toml").read_text()
    # A regular expression, not tomllib: tomllib is itself newer than 3.10.
    declared = re.search(r'^requires-python\s*=\s*"([^"]*)"', pyproject, re.MULTILINE)
    assert declared is not None, "pyproject.toml has no requires-python"
    assert declared.group(1) == ">=%d.%d" % MINIMUM_PYTHON


def test_no_feature_newer_than_the_minimum():
    target = "%d.%d-" % MINIMUM_PYTHON  # "this version or older suffices"
    # --eval-annotations: annotations count, since modules without `from __future__ import
    # annotations` evaluate them at import. --pessimistic: a file this interpreter cannot
    # parse is a violation rather than skipped. --no-config-file: the flags here are all.
    command = [sys.executable, "-c", "import vermin; vermin.main()",
               f"--target={target}", "--violations", "--no-tips", "--eval-annotations",
               "--pessimistic", "--no-config-file", "--format", "parsable",
               *(str(ROOT / name) for name in CHECKED_DIRS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    # Parsable lines read path:line:column:py2:py3:feature; summaries leave line empty.
    violations = [line for line in result.stdout.splitlines()
                  if re.match(r"[^:]+:\d+:", line)]
    assert result.returncode == 0 and not violations, (
        f"Code needs a Python newer than {target[:-1]} (pyproject's requires-python); use an "
        "older equivalent:\n" + ("\n".join(violations) or result.stdout + result.stderr))


def _catches_builtin_timeout_only(handler: ast.ExceptHandler) -> bool:
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = [ast.unparse(node) for node in caught if node is not None]
    return "TimeoutError" in names and "asyncio.TimeoutError" not in names


def test_asyncio_deadlines_are_caught_as_asyncio_timeout_error():
    # Python 3.11 made asyncio.TimeoutError the builtin TimeoutError. On 3.10 they are two
    # classes, so `except TimeoutError` around asyncio.wait_for passes type checks and
    # vermin, and then lets the timeout through.
    offenders = []
    for name in CHECKED_DIRS:
        for path in sorted((ROOT / name).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Try):
                    continue
                waits = any(isinstance(call, ast.Call)
                            and ast.unparse(call.func) == "asyncio.wait_for"
                            for statement in node.body for call in ast.walk(statement))
                if waits and any(_catches_builtin_timeout_only(h) for h in node.handlers):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], ("catch asyncio.TimeoutError around asyncio.wait_for "
                             f"(on Python 3.10 it is not TimeoutError): {offenders}")

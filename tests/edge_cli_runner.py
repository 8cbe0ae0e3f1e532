"""``edge-run`` driven in the test's own process through :func:`edge.cli.main`, as typer's
``CliRunner`` drives a typer app: stdout and stderr captured, stdin empty."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from unittest import mock


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None  # an exception out of edge-run: a traceback for a user (SystemExit is none)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(args, env: dict | None = None) -> CliResult:
    """``edge-run ARGS`` (each made a str), ``env`` added to the environment for the call."""
    from edge.cli import main

    out, err = io.StringIO(), io.StringIO()
    stdin, sys.stdin = sys.stdin, io.TextIOWrapper(io.BytesIO(b""))
    exception = None
    try:
        with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except Exception as e:  # noqa: BLE001 - returned for the test to report
                exception, code = e, 1
    finally:
        sys.stdin = stdin
    return CliResult(code, out.getvalue(), err.getvalue(), exception)

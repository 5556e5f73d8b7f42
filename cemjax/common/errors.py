"""How the command-line jobs end: one line for every expected error, a traceback only for bugs.

Exit codes (all CLIs): 0 done; 1 a bug (traceback); 2 a bad flag or config value; 3 bad or missing input (a
file, a folder, a dataset that is not built, weights that do not fit); 4 training diverged; 5 weights refused
(a pickle that would run code); 130 interrupted; 141 its output went into a closed pipe. Curation also ends 3
when it finished but rejected inputs. `--verbose` prints the traceback of expected errors too.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback
from collections.abc import Callable

EXIT_BUG, EXIT_CONFIG, EXIT_INPUT, EXIT_DIVERGED, EXIT_REFUSED, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe


class ConfigError(ValueError):
    """A flag or config value that cannot work; the message names the field and what to do."""


class InputError(ValueError):
    """Input that cannot be used (a file, a folder, weights, a model directory); the message names it and the fix."""


class DivergedError(RuntimeError):
    """Training produced non-finite values; the message names the step and the last good checkpoint."""


class RefusedError(RuntimeError):
    """Input refused for safety (a pickle that would run code); nothing from it was executed."""


def exit_code(err: BaseException) -> int | None:
    """The exit code of an expected error, or None for a bug."""
    if isinstance(err, RefusedError):
        return EXIT_REFUSED
    if isinstance(err, DivergedError):
        return EXIT_DIVERGED
    if isinstance(err, InputError | FileNotFoundError | NotADirectoryError | IsADirectoryError | PermissionError):
        return EXIT_INPUT
    if isinstance(err, ConfigError | ValueError):
        return EXIT_CONFIG
    if isinstance(err, ImportError) and "pip install" in str(err):
        return EXIT_INPUT
    return None


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) < 2000 else text[:2000] + " …"


def _silence_broken_pipe() -> None:
    """stdout/stderr lead into a closed pipe: point them at /dev/null so nothing more (not even the interpreter's
    flush at exit) tries to write there, and the process ends instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # a replaced stream without a file descriptor
            pass
    os.close(devnull)


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except BrokenPipeError:
        _silence_broken_pipe()


def guarded(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI body: expected errors print `error: <one line>` to stderr and return their exit code."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        verbose = "--verbose" in sys.argv
        try:
            try:
                code = int(main(*args, **kwargs) or 0)
                sys.stdout.flush()
                return code
            except BrokenPipeError:  # the reader of our output went away: stop quietly, never hang or retry
                _silence_broken_pipe()
                return EXIT_BROKEN_PIPE
            except KeyboardInterrupt:
                _say("interrupted")
                return EXIT_INTERRUPTED
            except Exception as err:  # noqa: BLE001  (sorted into expected errors and bugs below)
                code = exit_code(err)
                if code is None or verbose:
                    traceback.print_exc()
                if code is None:
                    return EXIT_BUG
                _say(f"error: {one_line(err)}")
                return code
        except BrokenPipeError:  # while printing the traceback of a bug
            _silence_broken_pipe()
            return EXIT_BUG

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one `error: …` line (exit code 2), like every other expected error."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(EXIT_CONFIG)

"""What every command of `python -m spitikos` shares: one-line refusals, and checks of the paths and
stack names it is given, made before anything is built."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

# Pulumi's stack names: letters, digits, '-', '_' and '.'; never a path.
STACK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Parser(argparse.ArgumentParser):
    """argparse, whose refusal is one line (`<command>: <what is wrong>`, exit 2) rather than its usage
    and the error: the line names the argument and the problem, and `--help` has the rest."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_to_write(value: str) -> Path:
    """A folder that exists or can be created, and can be written: checked before anything is built."""
    if not value:
        raise argparse.ArgumentTypeError("is empty: name a folder (it is created if missing)")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a file, not a folder: name a folder (it is created if missing)")
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{value} cannot be created: {existing} is a file, not a folder")
    try:  # made now, before anything is built: what cannot be made says so at once
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{value} cannot be created: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{value} cannot be written: it is not writable")
    return path


def file_to_write(value: str) -> Path:
    """A file whose folder exists and can be written, and that is not a folder itself."""
    if not value:
        raise argparse.ArgumentTypeError("is empty: name the file to write")
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder: name the file to write")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{value} cannot be written: its folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{value} cannot be written: {folder} is not writable")
    return path


def stack_name(value: str) -> str:
    if not STACK_NAME_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a stack name (letters, digits, '-', '_', '.')")
    return value


def write_private(path: Path, text: str) -> None:
    """`text` to `path`, readable by its owner alone, whole or not at all: a temporary file beside it,
    renamed over it once written (a failure leaves no empty or partial file behind)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def refuse(command: str, message: str) -> int:
    print(f"{command}: {message}", file=sys.stderr)
    return 2

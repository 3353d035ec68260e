"""The dry-run transport: each message as a JSON file named by its key in the outbox folder."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from dispatcher.channels.base import Envelope, SendFailed

FILE_MODE = 0o666
"""As ``open()`` creates files: the umask decides."""


def write_atomically(path: Path, data: bytes, *, make_folder: bool = True) -> None:
    """Write ``data`` to ``path`` all at once (temporary file, then rename): a killed process
    leaves the whole file or none. (No fsync: the files survive a process crash, which is what
    the outbox guards against; a machine crash loses the page cache, as for any spool.)"""
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = f"{path.parent}/.{path.name}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        rest = memoryview(data)  # os calls: a buffered file object costs more than the write
        while rest:
            rest = rest[os.write(descriptor, rest) :]
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


class FileOutbox:
    """``dry_run``: ``<outbox>/<channel>/<message_id>.json``; writing twice leaves one file."""

    name = "dry_run"
    idempotent = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: set[Path] = set()
        """Channel folders created by this process (one mkdir each, not one per message)."""

    def send(self, envelope: Envelope) -> str:
        folder = self.folder / envelope.channel
        path = folder / f"{envelope.message_id}.json"
        data = orjson.dumps(vars(envelope))  # flat: no asdict copy; UTF-8 as it is
        try:
            self._write(folder, path, data)
        except OSError as error:
            raise SendFailed(f"dry-run outbox {path}: {error.strerror}", retry=True) from None
        return str(path)

    def _write(self, folder: Path, path: Path, data: bytes) -> None:
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        try:
            write_atomically(path, data, make_folder=False)
        except FileNotFoundError:  # the folder was removed meanwhile: make it again
            write_atomically(path, data)

    def close(self) -> None:
        pass

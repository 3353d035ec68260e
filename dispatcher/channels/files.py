"""The dry-run transport: each message as a JSON file named by its key in the outbox folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from dispatcher.channels.base import Envelope, SendFailed


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once (temporary file, then rename): a killed process
    leaves the whole file or none. (No fsync: the files survive a process crash, which is what
    the outbox guards against; a machine crash loses the page cache, as for any spool.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class FileOutbox:
    """``dry_run``: ``<outbox>/<channel>/<message_id>.json``; writing twice leaves one file."""

    name = "dry_run"
    idempotent = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope: Envelope) -> str:
        path = self.folder / envelope.channel / f"{envelope.message_id}.json"
        try:
            write_atomically(path, json.dumps(asdict(envelope), ensure_ascii=False).encode())
        except OSError as error:
            raise SendFailed(f"dry-run outbox {path}: {error.strerror}", retry=True) from None
        return str(path)

    def close(self) -> None:
        pass

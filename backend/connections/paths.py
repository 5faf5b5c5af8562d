"""Confinement of SQLite and DuckDB file paths to the directories settings allow."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from backend.connections.errors import ConnectionPathNotAllowed
from backend.core.config import Settings

_APP_DB_COMPANIONS = ("", "-wal", "-shm", "-journal")
_PROC_LOCKS = Path("/proc/locks")

T = TypeVar("T")


def _forbidden_files(settings: Settings) -> set[Path]:
    forbidden: set[Path] = set()
    app_db = settings.app_database_path
    if app_db is not None:
        forbidden |= {Path(str(app_db) + suffix) for suffix in _APP_DB_COMPANIONS}
    if settings.secrets_file is not None:
        forbidden.add(settings.secrets_file.expanduser().resolve())
    return forbidden


def confine_database_path(raw: str, settings: Settings, *, must_exist: bool = True) -> Path:
    """The resolved path of a database file inside an allowed directory.

    Symlinks are resolved before the check, so a link inside an allowed directory that points
    outside it is refused; so are the platform's own database and secrets. Raises
    `ConnectionPathNotAllowed` (422).
    """
    if not raw or "\x00" in raw:
        raise ConnectionPathNotAllowed("Give the path of a database file.")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        if not settings.sqlite_allowed_dirs:
            raise ConnectionPathNotAllowed("No directory is configured for database files.")
        candidate = settings.sqlite_allowed_dirs[0] / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ConnectionPathNotAllowed("This path cannot be resolved.") from exc
    allowed_dirs = [d.resolve() for d in settings.sqlite_allowed_dirs]
    if not any(resolved.is_relative_to(d) for d in allowed_dirs):
        raise ConnectionPathNotAllowed(
            details={"allowed_dirs": [str(d) for d in allowed_dirs]},
        )
    if resolved in _forbidden_files(settings):
        raise ConnectionPathNotAllowed("This file belongs to the platform itself.")
    if must_exist and not resolved.is_file():
        raise ConnectionPathNotAllowed("No database file exists at this path.")
    return resolved


@dataclass(frozen=True, slots=True)
class PathConfinement:
    """The allowed directories and forbidden files, checked again at every open of a file
    database (a file may be swapped for a symlink after the connection was saved)."""

    allowed_dirs: tuple[Path, ...]
    forbidden: frozenset[Path]

    @classmethod
    def from_settings(cls, settings: Settings) -> PathConfinement:
        return cls(
            allowed_dirs=tuple(d.resolve() for d in settings.sqlite_allowed_dirs),
            forbidden=frozenset(_forbidden_files(settings)),
        )

    def check_before_open(self, path: str) -> os.stat_result:
        """The file's identity, if `path` is a regular file (not a symlink) whose real path is
        itself and lies inside an allowed directory. Raises `ConnectionPathNotAllowed`."""
        real = Path(os.path.realpath(path))
        if str(real) != path:
            raise ConnectionPathNotAllowed("The database file was replaced by a link.")
        if not any(real.is_relative_to(d) for d in self.allowed_dirs) or real in self.forbidden:
            raise ConnectionPathNotAllowed(
                details={"allowed_dirs": [str(d) for d in self.allowed_dirs]}
            )
        try:
            info = os.lstat(path)
        except OSError as exc:
            raise ConnectionPathNotAllowed("No database file exists at this path.") from exc
        if not stat.S_ISREG(info.st_mode):
            raise ConnectionPathNotAllowed("The database path is not a regular file.")
        return info

    def check_after_open(self, path: str, before: os.stat_result, opened: str | None) -> None:
        """Refuse an open that reached another file than the one checked: the engine's own
        name for the file it opened (`opened`, where it tells) must be the checked path, and
        the path must still be the same regular file."""
        if opened is not None and os.path.realpath(opened) != path:
            raise ConnectionPathNotAllowed("The database file was replaced by a link.")
        after = self.check_before_open(path)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise ConnectionPathNotAllowed("The database file was replaced while opening it.")


FileIdentity = tuple[int, int, int]
"""A file's device (major, minor) and inode number, as `/proc/locks` names the files it lists."""


def file_identity(info: os.stat_result) -> FileIdentity:
    return (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)


def whole_file_locks(pid: int | None = None) -> frozenset[FileIdentity] | None:
    """The files on which process `pid` (this one by default) holds a POSIX lock over the whole
    file, from `/proc/locks`; None where the system does not list its locks.

    A DuckDB database opened read-only holds such a lock on the file it opened for as long as it
    is open; SQLite locks byte ranges only."""
    own = str(os.getpid() if pid is None else pid)
    try:
        lines = _PROC_LOCKS.read_text().splitlines()
    except OSError:
        return None
    held: set[FileIdentity] = set()
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  READ 9182 fe:00:2220041 0 EOF"; a waiter's line has "->" second.
        if len(fields) != 8 or fields[1] != "POSIX" or fields[4] != own:
            continue
        if fields[6] != "0" or fields[7] != "EOF":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            held.add((int(major, 16), int(minor, 16), int(inode)))
        except ValueError:
            continue
    return frozenset(held)


_LOCKING_OPENS = threading.Lock()


def open_confined_locking(
    confinement: PathConfinement, path: str, open_file: Callable[[], T], close: Callable[[T], None]
) -> T:
    """Open a database file with an engine that resolves the path itself and then holds a lock
    over the whole file it opened (DuckDB), and refuse the open unless that file is the checked one.

    Checking the path before and after the open is not enough for such an engine: the file can
    be swapped for a link to a file outside the allowed directories and back between the two
    checks (both pass, the engine opened the outside file). The file the engine opened is known
    from the lock it took: the opens of this process are taken one at a time, so a whole-file
    lock that appears during this open is this open's. A lock on any other file refuses it. (No
    new lock at all: the engine reused a database it already had open under this path, itself
    checked when it was opened.) Where the system lists no locks, only the path checks apply.
    """
    with _LOCKING_OPENS:
        before = confinement.check_before_open(path)
        held_before = whole_file_locks()
        opened = open_file()
        try:
            if held_before is not None:
                held_after = whole_file_locks() or frozenset()
                # By inode number: some filesystems (btrfs subvolumes) give `stat` another
                # device number than the one the lock list names.
                if {ino for *_, ino in held_after - held_before} - {before.st_ino}:
                    raise ConnectionPathNotAllowed(
                        "The database file was replaced while opening it."
                    )
            confinement.check_after_open(path, before, None)
        except BaseException:
            close(opened)
            raise
        return opened

"""Confinement of SQLite and DuckDB file paths to the directories settings allow."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from backend.connections.errors import ConnectionPathNotAllowed
from backend.core.config import Settings

_APP_DB_COMPANIONS = ("", "-wal", "-shm", "-journal")


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

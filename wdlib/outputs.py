"""Output targets the user names, checked before any work: ``check_output(path, argument, kind)``.

A run that trains for minutes and then cannot write its figure has wasted the minutes, so every
place that writes a file the user named (the CLI's ``--plot``, ``--json``, ``--csv``, ``--export``,
``reproduce --out``; the API's ``path=`` and ``out=``) calls :func:`check_output` first. It refuses,
with an :class:`OutputError` naming the argument, the problem and the fix:

- a value that is not a path (a number, ``""``, a name with a NUL character);
- a suffix the writer cannot write (a figure: any format matplotlib writes, checked without
  importing pyplot; a table: .csv or .json);
- a name longer than the file system takes (NAME_MAX per name, PATH_MAX in all);
- a folder where a file is wanted (and a file where ``reproduce`` wants a folder), a device or a
  pipe, a symbolic link loop, an existing file that is read-only;
- a folder that is missing and cannot be created (a file is in the way), or that is not writable:
  checked by creating (and removing) an empty file, not with ``os.access``, which says yes to root
  even on a read-only file system.

A missing folder is fine: the writer creates it. A disk that is full (or an I/O error) when probed
is a fault of the machine, not a mistake, and raises that ``OSError``. A check creates and changes
nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io import TEMP_MARK, resolved, temp_prefix

#: The figure formats known without asking matplotlib (the ones the docs show).
COMMON_FIGURES = ("png", "svg", "pdf")
#: Suffixes of each kind of file; a figure's come from matplotlib (:func:`figure_formats`).
TABLE_SUFFIXES = {"csv": (".csv",), "json": (".json",), "table": (".csv", ".json")}
KINDS = ("figure", "folder", "file", *TABLE_SUFFIXES)
#: The errors of creating a file that say the path is wrong (the user's to fix), not the machine.
_REFUSED = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP,
            errno.EISDIR, errno.ENOENT}


class OutputError(ConfigError):
    """A file (or folder) the user asked wdlib to write cannot be written there."""

    def __init__(self, field: str, got: object, problem: str, fix: str = "") -> None:
        self.field, self.got, self.accepted, self.fix = field, got, problem, fix
        shown = str(got) if isinstance(got, os.PathLike) else got
        Exception.__init__(self, f"{field}={shown!r}: {problem}" + (f"; {fix}" if fix else ""))


def figure_formats() -> tuple[str, ...]:
    """Every format a wdlib figure can be written as: matplotlib's (``eps``, ``jpg``, ``tiff``, ...),
    ``pgf`` only when its LaTeX program is installed. Imports matplotlib's backend base, not pyplot."""
    global _FORMATS
    if _FORMATS is None:
        import shutil

        import matplotlib
        from matplotlib.backend_bases import FigureCanvasBase

        found = [f for f in FigureCanvasBase.get_supported_filetypes() if f not in COMMON_FIGURES]
        if not shutil.which(str(matplotlib.rcParams["pgf.texsystem"])):
            found = [f for f in found if f != "pgf"]
        _FORMATS = (*COMMON_FIGURES, *sorted(found))
    return _FORMATS


_FORMATS: tuple[str, ...] | None = None


def check_format(format: Any, argument: str = "format") -> str:
    """``format`` (e.g. ``"png"`` or ``".PNG"``) as matplotlib's lower-case name, if a figure can be
    written in it; an :class:`OutputError` naming ``argument`` otherwise."""
    name = format.lower().lstrip(".") if isinstance(format, str) else None
    if name in COMMON_FIGURES:
        return name
    if name is not None and _can_draw() and name in figure_formats():
        return name
    raise OutputError(argument, format, "not a figure format", f"use one of {_formats_text(quote=True)}")


def _formats_text(quote: bool = False) -> str:
    names = figure_formats() if _can_draw() else COMMON_FIGURES
    return ", ".join(repr(n) if quote else f".{n}" for n in names)


def _can_draw() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def check_suffix(path: Path, argument: str, kind: str) -> None:
    """Refuse a file name whose suffix the writer of ``kind`` cannot write."""
    suffix = path.suffix.lower()
    if kind == "figure":
        if not _can_draw():
            raise OutputError(argument, path, "writing a figure needs matplotlib, which is not installed",
                              "install it: pip install matplotlib (or pip install 'wdlib[plot]')")
        if suffix[1:] in COMMON_FIGURES or (suffix and suffix[1:] in figure_formats()):
            return
        raise OutputError(argument, path, f"not a file name ending in {_formats_text()}",
                          "these are the formats matplotlib writes")
    accepted = TABLE_SUFFIXES[kind]
    if suffix not in accepted:
        raise OutputError(argument, path, "not a file name ending in " + " or ".join(accepted))


def check_output(path: Any, argument: str, kind: str = "figure", *,
                 inputs: Mapping[str, Any] | None = None) -> Path | None:
    """``path`` as a Path if a file of ``kind`` ("figure", "csv", "json", "table": csv or json,
    "file": any name, or "folder" for a folder of files) can be written there; None for None.
    ``argument`` (e.g. ``"--plot"`` or ``"path"``) names the value in the error. ``inputs``
    (argument -> path) are files the same command reads: writing over one of them is refused.
    """
    if path is None:
        return None
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise OutputError(argument, path, "not a file path", "pass a str or pathlib.Path")
    text = os.fspath(path)
    if not text.strip():
        raise OutputError(argument, path, "an empty file name", "name the file, e.g. 'out/figure.png'")
    if "\0" in text:
        raise OutputError(argument, path, "a file name with a NUL character", "no file system takes one")
    if TEMP_MARK in Path(text).name:
        raise OutputError(argument, path, f"a name with {TEMP_MARK!r}, which marks wdlib's temporary "
                          "files (removed after a kill)", "choose another name")
    given = Path(text)
    if kind not in ("folder", "file"):
        check_suffix(given, argument, kind)
    target = _target(given, argument)
    _check_lengths(given, target, argument)
    if kind == "folder":
        _check_folder_target(given, target, argument)
    else:
        _check_file_target(given, target, argument)
    for name, other in (inputs or {}).items():
        if other is not None and os.path.exists(other) and os.path.exists(target) \
                and os.path.samefile(other, target):
            raise OutputError(argument, path, f"the same file as {name}={os.fspath(other)!r}, which is "
                              "read as input", "write the output to another file")
    return given


def _target(given: Path, argument: str) -> Path:
    """The file a write changes (symbolic links followed); a link loop is refused."""
    target = resolved(given)
    try:
        os.stat(target)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputError(argument, given, "a symbolic link loop", "remove the link") from None
    return target


def _existing_ancestor(path: Path) -> Path:
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            return folder
    return Path("/")


def _check_lengths(given: Path, target: Path, argument: str) -> None:
    """Refuse a name longer than NAME_MAX or a path longer than PATH_MAX of its file system."""
    ancestor = _existing_ancestor(target.parent)
    name_max, path_max = (_pathconf(ancestor, "PC_NAME_MAX", 255), _pathconf(ancestor, "PC_PATH_MAX", 4096))
    for part in target.relative_to(ancestor).parts:  # the names still to be created
        size = len(os.fsencode(part))
        if size > name_max:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-12:]}"
            raise OutputError(argument, given, f"the name {shown!r} is {size} bytes long, more than the "
                              f"{name_max} its file system takes", "choose a shorter name")
    size = len(os.fsencode(str(target)))
    if size >= path_max:
        raise OutputError(argument, given, f"the path is {size} bytes long, more than the {path_max - 1} "
                          "the system takes", "choose a shorter path")


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf on Windows
        return default
    return value if value and value > 0 else default


def _check_file_target(given: Path, target: Path, argument: str) -> None:
    if target.is_dir():
        raise OutputError(argument, given, "a folder, not a file", "name a file inside it, e.g. "
                          f"{str(given / ('out' + (given.suffix or '.png')))!r}")
    if os.path.lexists(target) and not target.is_file():
        raise OutputError(argument, given, "not a regular file (a device, a pipe or a socket): writing "
                          "replaces it", "name a regular file")
    if target.is_file() and not os.access(target, os.W_OK):
        raise OutputError(argument, given, "an existing file that is read-only",
                          f"make it writable (chmod u+w {str(given)!r}) or choose another name")
    _check_folder(given, target.parent, argument, target)


def _check_folder_target(given: Path, target: Path, argument: str) -> None:
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(argument, given, "an existing file, not a folder: the figures go into a folder",
                          "name a new or existing folder")
    _check_folder(given, target, argument, target / "figure")


def _check_folder(given: Path, folder: Path, argument: str, target: Path) -> None:
    """The folder exists and is writable, or can be created in a writable folder."""
    ancestor = _existing_ancestor(folder)
    if not ancestor.is_dir():
        raise OutputError(argument, given, f"{str(ancestor)!r} is a file, not a folder",
                          "choose a path in a folder")
    probe = ancestor / f"{temp_prefix(target)}{os.getpid()}-probe"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return  # a probe of this process (another thread) is there: the folder takes files
    except OSError as err:
        if err.errno not in _REFUSED:  # a full disk, an I/O error: the machine's fault, not the path's
            raise OSError(err.errno, f"cannot write {argument}: {err.strerror}", str(given)) from err
        where = "the folder" if ancestor == folder else "the folder it is created in,"
        raise OutputError(argument, given, f"{where} {str(ancestor)!r} is not writable ({err.strerror})",
                          "choose a writable folder, or make it writable") from None
    with contextlib.suppress(OSError):
        os.unlink(probe)

"""Atomic file output: a result file is either the old one or the complete new one, never half.

The new content goes to a temporary file beside the target, which then replaces the target in one
``os.replace``. Three details make that safe for files the user already has:

- the replaced file keeps its mode (a 0600 file stays 0600) and, where the process may set it, its
  owner; a new file gets the mode ``open()`` would give it (0666 less the umask);
- a symbolic link is written through: its target gets the new content and the link stays a link;
- a temporary file never outlives its write: an exception removes it, and one left by a killed
  process (named ``.<name>.wdlib-tmp-<pid>-<random>``, so recognizable) is removed by the next write
  of the same file once its process is gone.

Replacing gives the target a new inode: hard links to the old file keep the old content.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: What every temporary file's name holds after ``.<name>``: a killed write's leftover is recognizable.
TEMP_MARK = ".wdlib-tmp-"
#: The longest part of the target's name (in bytes) a temporary name repeats, so that a target whose
#: name is close to the file system's limit still gets a temporary name within it.
_NAME_PART = 100


def resolved(path: str | os.PathLike[str]) -> Path:
    """The file a write of ``path`` changes: ``path`` with every symbolic link followed (a link to a
    missing file gives the file it points to), absolute."""
    return Path(os.path.realpath(path))


def temp_prefix(target: Path) -> str:
    """The start of every temporary file name of writes to ``target``: ``.<name>.wdlib-tmp-``."""
    name = target.name
    while len(os.fsencode(name)) > _NAME_PART:  # a long (possibly non-ASCII) name: its start only
        name = name[:-1]
    return f".{name}{TEMP_MARK}"


def leftovers(target: Path) -> list[Path]:
    """Temporary files of earlier writes to ``target`` whose process is gone (killed mid-write)."""
    prefix, found = temp_prefix(target), []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            found.append(target.parent / name)
    return found


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (on this machine); a write of a live process is left alone."""
    if pid == os.getpid() or os.name == "nt":  # Windows: os.kill(pid, 0) would send CTRL_C_EVENT
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's process, or a number the OS does not take: not ours to judge
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``'s file; on success it replaces that file in one rename.

    Write to the yielded path (e.g. ``fig.savefig(tmp)``); if the block raises, ``path`` is untouched
    and the temporary file removed. The folder is created if missing. A symbolic link ``path`` is
    written through (its target changes, the link stays); an existing file keeps its mode.
    """
    target = resolved(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in leftovers(target):
        with contextlib.suppress(OSError):
            old.unlink()
    try:
        previous: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        previous = None
    import tempfile  # here, not at module level: it costs ~4 ms of `import wdlib`

    suffix = target.suffix if len(target.suffix) <= 16 else ""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{temp_prefix(target)}{os.getpid()}-",
                               suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _copy_mode(tmp, previous)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_mode(tmp: str, previous: os.stat_result | None) -> None:
    """Give ``tmp`` the mode (and, when allowed, owner) of the file it replaces, or a new file's mode."""
    import stat

    if previous is None:
        os.chmod(tmp, _default_mode())  # mkstemp makes 0600; a new result file gets the usual mode
        return
    if (previous.st_uid, previous.st_gid) != _owner(tmp) and hasattr(os, "chown"):
        with contextlib.suppress(OSError):  # only root may give a file away: others keep theirs
            os.chown(tmp, previous.st_uid, previous.st_gid)
    os.chmod(tmp, stat.S_IMODE(previous.st_mode))


def _owner(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _default_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would have given a new file."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask

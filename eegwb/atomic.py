"""Atomic file writes: write to a temporary sibling, fsync, then rename.

A reader (or a crash) sees either the old file or the complete new one, never a
half-written file under the final name. Used for datasets, caches, manifests and
checkpoints.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from eegwb.errors import OutputExistsError

__all__ = [
    "OutputExistsError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temps",
]


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` if the block succeeds.

    The temporary name starts with '.' and ends in '.tmp', so globbing `*.parquet` or
    `*.pt` never picks up an unfinished file. On error the temporary file is removed and
    `final` is untouched.
    """
    final = Path(final)
    if not overwrite and final.exists():
        raise OutputExistsError(f"{final}: already exists (pass overwrite=True / --overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file 0600; give it the mode a plain open() would (0666 minus umask),
    # so datasets and checkpoints stay readable by the group as any other output.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)  # the rename itself survives a power loss
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_glob(final: str | os.PathLike) -> str:
    """The glob that matches `atomic_path`'s temporary files for `final` (in its folder)."""
    # mkstemp puts 8 random characters between prefix and suffix; '*' would also match the
    # temporary files of `final.name + ".bak"`.
    return f".{glob.escape(Path(final).name)}.????????.tmp"


def remove_stale_temps(final: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed save of `final` left beside it; only those.

    `atomic_path` removes its temporary file on any exception, but not when the process is
    killed. Call this only while no other live process can be saving `final` (a run that
    holds `final`'s lock, see eegwb.locks); returns what was removed."""
    final = Path(final)
    removed = []
    for tmp in sorted(final.parent.glob(temp_glob(final))):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform or file system opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(final: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def atomic_write_text(final: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(final, text.encode("utf-8"), overwrite=overwrite)

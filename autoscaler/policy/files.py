"""Reading a policy or config file safely: only regular files (after symlinks), opened
without blocking (a FIFO cannot hang the read), and never more than the cap (`MAX_TEXT`,
4 MiB): a symlink to `/dev/zero` or a huge file is refused before it is read, with a
`FileRefused` whose message says why. `loader.py` turns that into a located error."""

from __future__ import annotations

import errno
import os
import stat

from autoscaler.policy.yamlnodes import MAX_TEXT

PathLike = str | os.PathLike[str]


class FileRefused(ValueError):
    """A file that cannot be read as a policy or config; the message says why, `errno` is
    the OS error behind it (`ENOENT` for a missing file), if any."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    """Why a file of `mode` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"is not a regular file ({kind})"


def open_regular(path: PathLike) -> int:
    """A read-only descriptor of `path`, a regular file (symlinks followed), or FileRefused.

    Checked before opening (a FIFO would block in open) and again on the open descriptor
    (the path may have changed in between); O_NONBLOCK keeps even that race from hanging."""
    if "\0" in os.fspath(path):  # os.stat would raise ValueError
        raise FileRefused("cannot read: the path holds a NUL byte")
    try:
        why = _not_regular(os.stat(path).st_mode)
        if why is not None:
            raise FileRefused(why)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise FileRefused("is a folder, not a file") from None
        raise FileRefused(f"cannot read: {exc.strerror or exc}", exc.errno) from None
    try:
        why = _not_regular(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    if why is not None:
        os.close(fd)
        raise FileRefused(why)
    return fd


def read_file_capped(path: PathLike, limit: int = MAX_TEXT) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, or FileRefused."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileRefused(f"file too large ({size} bytes, at most {limit})")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the size may have grown since fstat: read one byte past
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise FileRefused(f"file too large (more than {limit} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)

"""Where a study lives: a path (on one machine, or on a filesystem every node mounts) or a URI
that pyarrow and Ray Tune understand (``s3://bucket/path``, ``gs://bucket/path``).

The layout is the same everywhere: ``<output.storage>/<name>/`` holds Ray Tune's experiment
(trial directories, checkpoints) and tunefleet's files (spec.yaml, data/, summary.json, report/).
With a URI, Ray Tune writes the trials to it directly; tunefleet's own files are written in a
local mirror (``$TUNEFLEET_CACHE``, default ``~/.cache/tunefleet``) and uploaded, and reading a
study (summary, report) first downloads it into that mirror.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

# The form of a location is checked in the spec (re-exported here for callers that import it
# from storage); this module reaches the storage.
from .spec.locations import REMOTE_SCHEMES, check_location, is_uri
from .spec.locations import uri_host as _host

if TYPE_CHECKING:
    from .spec import Experiment

__all__ = ["StudyStorage", "check_location", "is_uri", "split_study_location", "study_storage",
           "experiment_storage", "cache_root", "REMOTE_SCHEMES"]

_CHECKPOINT_PREFIX = "checkpoint_"
# Files downloaded at a time from a URI (requests wait on the network, not the CPU).
TRANSFER_THREADS = 16


def cache_root() -> Path:
    """Where studies kept at a URI are mirrored locally: ``$TUNEFLEET_CACHE`` or
    ``~/.cache/tunefleet``."""
    return Path(os.environ.get("TUNEFLEET_CACHE") or "~/.cache/tunefleet").expanduser()


def split_study_location(location: str) -> tuple[str, str]:
    """``(output.storage, name)`` from a study's own location (a directory or a URI, whose
    query string, e.g. ``?endpoint_override=...``, stays with the storage part)."""
    if not is_uri(location):
        path = Path(check_location(location)).expanduser().resolve()
        return str(path.parent), path.name
    parts = urlsplit(location)
    head, _, name = parts.path.rstrip("/").rpartition("/")
    root = f"{parts.scheme}://{parts.netloc}{head}" + (f"?{parts.query}" if parts.query else "")
    return root, name


class StudyStorage:
    """One study's place: its location for people, its filesystem for Ray Tune and tunefleet,
    and the local directory its files are read from."""

    def __init__(self, root: str, name: str):
        root = check_location(root)
        # Resolved here, in the driver: trial processes run in directories of their own.
        self.root = root if is_uri(root) else str(Path(root).expanduser().resolve())
        self.name = name
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Sent to trial processes: each resolves the filesystem (and its credentials) itself.
        return {"root": self.root, "name": self.name, "_fs": None}

    @property
    def remote(self) -> bool:
        return is_uri(self.root)

    @property
    def location(self) -> str:
        """The study as people read it: a directory, or a URI without credentials or query."""
        if not self.remote:
            return str(self.local_dir)
        parts = urlsplit(self.root)
        return f"{parts.scheme}://{_host(parts)}{parts.path.rstrip('/')}/{self.name}"

    @property
    def reference(self) -> str:
        """The study's location in full (a URI keeps its credentials and query string): what
        :func:`study_storage` turns back into this storage. Not for printing."""
        if not self.remote:
            return self.location
        parts = urlsplit(self.root)
        return (f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{self.name}"
                + (f"?{parts.query}" if parts.query else ""))

    @property
    def local_dir(self) -> Path:
        """The study's directory, or for a URI its local mirror."""
        if not self.remote:
            return Path(self.root).expanduser().resolve() / self.name
        parts = urlsplit(self.root)
        # The query (e.g. another endpoint) is part of the identity, but not of a readable path.
        tag = hashlib.sha1(parts.query.encode()).hexdigest()[:8] if parts.query else ""
        return (cache_root() / "studies" / parts.scheme / (_host(parts) + (f"@{tag}" if tag else ""))
                / parts.path.strip("/") / self.name)

    # -- the filesystem ------------------------------------------------------------------

    def filesystem(self) -> tuple[Any, str]:
        """``(pyarrow filesystem, path of the study on it)``."""
        if self._fs is None:
            import pyarrow.fs as pafs

            if self.remote:
                fs, root = pafs.FileSystem.from_uri(self.root)
            else:
                fs, root = pafs.LocalFileSystem(), str(self.local_dir.parent)
            self._fs = (fs, root.rstrip("/"))
        fs, root = self._fs
        return fs, f"{root}/{self.name}"

    def ray_storage(self) -> dict[str, Any]:
        """``storage_path`` (and ``storage_filesystem``) for Ray Tune's RunConfig: the study's
        parent, since Ray Tune adds the study's name."""
        if not self.remote:
            return {"storage_path": str(self.local_dir.parent)}
        fs, path = self.filesystem()
        return {"storage_path": path.rpartition("/")[0], "storage_filesystem": fs}

    def _path(self, relative: str) -> str:
        fs, path = self.filesystem()
        return f"{path}/{relative}" if relative else path

    def read_text(self, relative: str) -> Optional[str]:
        """A file of the study, read where it is stored; None if it is not there."""
        if not self.remote:
            try:
                return (self.local_dir / relative).read_text()
            except OSError:
                return None
        fs, _ = self.filesystem()
        try:
            with fs.open_input_stream(self._path(relative)) as stream:
                return stream.read().decode()
        except (OSError, FileNotFoundError):
            return None

    def write_text(self, relative: str, text: str) -> None:
        """Write a file of the study where it is stored."""
        if not self.remote:
            path = self.local_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        fs, _ = self.filesystem()
        with fs.open_output_stream(self._path(relative)) as stream:
            stream.write(text.encode())

    def holds_anything(self) -> bool:
        return bool(self.top_names())

    def top_names(self) -> list[str]:
        """The names directly under the study's location (empty if there is nothing there)."""
        if not self.remote:
            if self.local_dir.is_dir():
                return sorted(p.name for p in self.local_dir.iterdir())
            return [self.local_dir.name] if self.local_dir.exists() else []  # a file
        import pyarrow.fs as pafs

        fs, path = self.filesystem()
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
        except Exception as exc:  # noqa: BLE001 -- pyarrow raises OSError and ArrowInvalid alike
            raise self._unreachable(exc) from None
        return sorted(i.path.rstrip("/").rpartition("/")[2] for i in infos)

    def is_study(self, names: Optional[list[str]] = None) -> bool:
        """True if the location holds a study: tunefleet's spec.yaml or Ray Tune's state
        (``names``: :meth:`top_names`, when the caller has them)."""
        if not self.remote and not self.local_dir.is_dir():
            return False
        return any(name in ("spec.yaml", "tuner.pkl") or (
            name.startswith("experiment_state") and name.endswith(".json"))
            for name in (self.top_names() if names is None else names))

    def check_replaceable(self) -> None:
        """SpecError unless the location is empty or holds a study: --overwrite deletes a
        study, never whatever else sits at ``output.storage/name``."""
        names = self.top_names()
        if names and not self.is_study(names):
            from .spec.errors import SpecError

            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise SpecError("output.storage", f"{self.location} is not a tunefleet study (no "
                            f"spec.yaml or Ray Tune state; it holds {shown}), so --overwrite "
                            "will not delete it", fix="move or delete it yourself, or change "
                            "name or output.storage")

    def clear(self) -> None:
        """Delete the study (its mirror too), to start it again; see :meth:`check_replaceable`."""
        import shutil

        self.check_replaceable()
        shutil.rmtree(self.local_dir, ignore_errors=True)
        if self.remote:
            fs, path = self.filesystem()
            fs.delete_dir_contents(path, missing_dir_ok=True)

    def check_writable(self) -> None:
        """Write, read back and delete a probe, so that missing credentials or a wrong bucket
        are one clear error before any training, not a failure in every trial."""
        from .spec.errors import SpecError

        probe = ".tunefleet_probe"
        try:
            self.write_text(probe, "ok")
            seen = self.read_text(probe)
            fs, _ = self.filesystem()
            fs.delete_file(self._path(probe))
        except Exception as exc:  # noqa: BLE001 -- any failure means: cannot store here
            raise self._unreachable(exc) from None
        if seen != "ok":
            raise SpecError("output.storage", f"a file written to {self.location} read back "
                            "differently", fix="use another bucket or path")

    def _unreachable(self, exc: Exception) -> Exception:
        from .spec.errors import SpecError

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return SpecError("output.storage", f"cannot write to {self.location}: {first}",
                         fix="check the bucket exists and this machine's credentials "
                         "(AWS_* / GOOGLE_APPLICATION_CREDENTIALS) can write to it")

    # -- moving files between the storage and the local directory ---------------------------

    def _list(self, under: str = "") -> list[Any]:
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        return fs.get_file_info(pafs.FileSelector(self._path(under), recursive=True,
                                                  allow_not_found=True))

    def upload(self, *relatives: str) -> None:
        """Copy files or directories of the local directory to the storage (no-op for a path)."""
        if not self.remote:
            return
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        for relative in relatives:
            source = self.local_dir / relative
            if source.is_dir():
                pafs.copy_files(str(source), self._path(relative),
                                source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
            elif source.is_file():
                with fs.open_output_stream(self._path(relative)) as stream:
                    stream.write(source.read_bytes())

    def download(self, checkpoints: bool = True, under: str = "") -> Path:
        """Bring the study (or its subdirectory ``under``) into its local directory and return
        the directory: for a URI every file (``checkpoints=False`` leaves the checkpoints
        behind) not already there unchanged, ``TRANSFER_THREADS`` files at a time; for a path
        nothing to do."""
        if not self.remote:
            return self.local_dir
        import pyarrow.fs as pafs

        fs, path = self.filesystem()
        wanted = []
        for info in self._list(under):
            relative = info.path[len(path):].lstrip("/")
            if info.type != pafs.FileType.File or (
                    not checkpoints and any(p.startswith(_CHECKPOINT_PREFIX)
                                            for p in relative.split("/"))):
                continue
            target = self.local_dir / relative
            if target.is_file() and target.stat().st_size == info.size and \
                    info.mtime is not None and target.stat().st_mtime >= info.mtime.timestamp():
                continue  # already here and unchanged
            wanted.append((info.path, target))
        for target in {t.parent for _, t in wanted}:
            target.mkdir(parents=True, exist_ok=True)
        if len(wanted) <= 1:
            for source, target in wanted:
                _copy_file(fs, source, target)
        else:  # a study is thousands of small files: one request at a time is all latency
            with ThreadPoolExecutor(max_workers=min(TRANSFER_THREADS, len(wanted))) as pool:
                list(pool.map(lambda pair: _copy_file(fs, *pair), wanted))
        return self.local_dir


def _copy_file(fs: Any, source: str, target: Path) -> None:
    """One file from the storage to the local disk, streamed (a checkpoint can be large)."""
    import pyarrow.fs as pafs

    pafs.copy_files(source, str(target), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem(), use_threads=False)


def experiment_storage(experiment: "Experiment") -> StudyStorage:
    """Where ``experiment``'s study lives (``output.storage/name``): a directory or a URI. A
    relative path is resolved against the current directory now (see :class:`StudyStorage`)."""
    return StudyStorage(experiment.output.storage, experiment.name)


def study_storage(location: "str | os.PathLike | StudyStorage") -> StudyStorage:
    """The storage of the study at ``location`` (a study directory or a study URI)."""
    if isinstance(location, StudyStorage):
        return location
    try:
        return StudyStorage(*split_study_location(str(location)))
    except ValueError as exc:
        from .spec.errors import SpecError

        raise SpecError("output.storage", str(exc)) from None

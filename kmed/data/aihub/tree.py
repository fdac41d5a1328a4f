"""Walk a user's AI Hub download from any root: folders, zips, split zips and zips inside zips.

    tree = DownloadTree(Path("data/raw/aihub"), report)
    for source in tree.files():          # every JSON file, packed or extracted
        data = source.read()             # bytes
        source.path                      # "09.필수의료 …/TL_내과.zip/필수_1.json" (NFC, "/"-joined)

What real downloads throw at us, and what we do:
- ``TL_내과.zip`` next to its extracted ``TL_내과/``: read the zip once, skip the folder (reported).
- ``x.zip.part0``, ``x.zip.part1`` … (aihubshell): read as one zip, without joining them on disk.
- Zip entry names without the UTF-8 flag come back from ``zipfile`` as cp437 mojibake: re-decode
  the raw bytes as UTF-8, else CP949.
- macOS: NFD file names (normalised to NFC), ``__MACOSX/`` and ``._*`` AppleDouble files (ignored).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kmed.data.aihub.report import Report

_PART_RE = re.compile(r"^(?P<base>.+\.zip)\.part(?P<n>\d+)$", re.IGNORECASE)
_SPANNED_RE = re.compile(r"\.z\d\d$", re.IGNORECASE)
_IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_MAX_ZIP_DEPTH = 3
_SPOOL_BYTES = 64 * 1024 * 1024  # inner zips larger than this spill to a temp file


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def norm_name(name: str) -> str:
    """Folder/file name key: NFC, case-folded, spaces and underscores the same, no ``.zip``."""
    name = nfc(name).casefold()
    name = re.sub(r"\.zip(\.part\d+)?$", "", name)
    return re.sub(r"[\s_]+", " ", name).strip()


def _ignored(name: str) -> bool:
    return name.startswith("._") or name.casefold() in _IGNORED_NAMES or name == "__MACOSX"


def fix_zip_name(info: zipfile.ZipInfo) -> str:
    """The entry name as its author wrote it: undo cp437 mojibake, then NFC."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            raw = None
        if raw is not None:
            for encoding in ("utf-8", "cp949"):
                try:
                    name = raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
    return nfc(name)


class ConcatReader(io.RawIOBase):
    """A read-only, seekable view of several files laid end to end (``x.zip.part0`` + ``part1`` …)."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._handles = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed in close()
        self._sizes = [os.fstat(h.fileno()).st_size for h in self._handles]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._total = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._total:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            handle = self._handles[index]
            handle.seek(self._pos - self._starts[index])
            want = min(len(view) - done, self._starts[index] + self._sizes[index] - self._pos)
            got = handle.readinto(view[done : done + want])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        super().close()


@dataclass(frozen=True)
class SourceFile:
    """One JSON file in the download; ``path`` is relative to the root the user gave."""

    path: str
    size: int
    reader: Callable[[], bytes]

    def read(self) -> bytes:
        return self.reader()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class InputFile:
    """A physical file we read (for the manifest): JSON, zip or zip part."""

    path: str
    size: int
    mtime_ns: int


class DownloadTree:
    def __init__(self, root: Path, report: Report):
        self.root = Path(root)
        self.report = report
        self._plan: list[tuple[str, str, list[Path]]] | None = None  # (kind, logical path, physical paths)
        self.ignored = 0  # non-JSON files (images, docs) we do not need

    # -- discovery ------------------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        if path == self.root:
            return nfc(path.name)
        return nfc(path.relative_to(self.root).as_posix())

    def plan(self) -> list[tuple[str, str, list[Path]]]:
        """What to read, in a stable order: ("json"|"zip", logical path, physical files)."""
        if self._plan is not None:
            return self._plan
        plan: list[tuple[str, str, list[Path]]] = []
        if self.root.is_file():  # the user pointed at one zip
            self._plan = [("zip", nfc(self.root.name), [self.root])] if self.root.suffix.casefold() == ".zip" else []
            return self._plan
        def unreadable(error: OSError) -> None:
            self.report.skip("read_error", nfc(str(error.filename or self.root)), type(error).__name__)

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=unreadable):
            current = Path(dirpath)
            dirnames[:] = sorted((d for d in dirnames if not _ignored(d)), key=nfc)
            parts: dict[str, list[tuple[int, Path]]] = {}
            zips: dict[str, list[Path]] = {}  # name → physical files (one, or the parts in order)
            for filename in sorted(filenames, key=nfc):
                if _ignored(filename):
                    continue
                path = current / filename
                lower = filename.casefold()
                match = _PART_RE.match(filename)
                if match:
                    parts.setdefault(match.group("base"), []).append((int(match.group("n")), path))
                elif lower.endswith(".zip"):
                    zips[filename] = [path]
                elif lower.endswith(".json"):
                    plan.append(("json", self._rel(path), [path]))
                elif _SPANNED_RE.search(lower):
                    self.report.skip("unsupported_split_zip", self._rel(path))
                else:
                    self.ignored += 1
            for base, numbered in sorted(parts.items()):
                if base in zips:  # the user already joined the parts: read the joined zip
                    continue
                numbered.sort()
                numbers = [n for n, _ in numbered]
                if numbers[0] not in (0, 1) or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                    self.report.skip("missing_part", self._rel(current / base), f"parts {numbers}")
                    continue
                zips[base] = [p for _, p in numbered]
            for name, physical in sorted(zips.items()):
                plan.append(("zip", self._rel(current / name), physical))
            # An extracted folder next to its zip holds the same files: read the zip only.
            stems = {norm_name(name): (name, physical) for name, physical in zips.items()}
            for dirname in list(dirnames):
                found = stems.get(norm_name(dirname))
                if found is not None and self._zip_opens(found[1]):
                    dirnames.remove(dirname)
                    self.report.skip("shadowed_folder", self._rel(current / dirname), f"→ {found[0]}")
        self._plan = sorted(plan, key=lambda entry: entry[1])
        return self._plan

    def _zip_opens(self, physical: list[Path]) -> bool:
        try:
            with self._open_physical(physical) as archive:
                return bool(archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return False

    def inputs(self) -> list[InputFile]:
        out = []
        for _, _, physical in self.plan():
            for path in physical:
                try:
                    stat = path.stat()
                except OSError:
                    continue  # reported when read
                out.append(InputFile(self._rel(path), stat.st_size, stat.st_mtime_ns))
        return sorted(out, key=lambda f: f.path)

    def count_json(self) -> int:
        """JSON files to read (zip central directories only; inner zips count as one): for progress."""
        count = 0
        for kind, _, physical in self.plan():
            if kind == "json":
                count += 1
                continue
            try:
                with self._open_physical(physical) as archive:
                    names = [fix_zip_name(i) for i in archive.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                continue
            count += sum(1 for n in names if n.casefold().endswith((".json", ".zip")) and not any(_ignored(p) for p in n.split("/")))
        return count

    # -- reading --------------------------------------------------------------------------------
    @staticmethod
    def _open_physical(paths: list[Path]) -> zipfile.ZipFile:
        if len(paths) == 1:
            return zipfile.ZipFile(paths[0])
        return zipfile.ZipFile(io.BufferedReader(ConcatReader(paths), buffer_size=1 << 20))

    def files(self) -> Iterator[SourceFile]:
        for kind, logical, physical in self.plan():
            if kind == "json":
                path = physical[0]
                try:
                    size = path.stat().st_size
                except OSError as exc:  # gone or unreadable since the walk
                    self.report.skip("read_error", logical, type(exc).__name__)
                    continue
                yield SourceFile(logical, size, path.read_bytes)
                continue
            try:
                archive = self._open_physical(physical)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                self.report.skip("bad_zip", logical, type(exc).__name__)
                continue
            with archive:
                yield from self._zip_files(archive, logical, depth=1)

    def _zip_files(self, archive: zipfile.ZipFile, prefix: str, depth: int) -> Iterator[SourceFile]:
        entries = []
        for info in archive.infolist():
            name = fix_zip_name(info)
            if info.is_dir() or any(_ignored(part) for part in name.split("/")):
                continue
            entries.append((name, info))
        for name, info in sorted(entries, key=lambda entry: entry[0]):
            logical = f"{prefix}/{name}"
            lower = name.casefold()
            if lower.endswith(".json"):
                yield SourceFile(logical, info.file_size, _entry_reader(archive, info))
            elif lower.endswith(".zip") and depth < _MAX_ZIP_DEPTH:
                yield from self._inner_zip(archive, info, logical, depth)
            else:
                self.ignored += 1

    def _inner_zip(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, logical: str, depth: int) -> Iterator[SourceFile]:
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - closed below
        try:
            with archive.open(info) as handle:
                shutil.copyfileobj(handle, spool, 1 << 20)
            spool.seek(0)
            inner = zipfile.ZipFile(spool)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            spool.close()
            self.report.skip("bad_zip", logical, type(exc).__name__)
            return
        with inner, spool:
            yield from self._zip_files(inner, logical, depth + 1)


def _entry_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    return lambda: archive.read(info)

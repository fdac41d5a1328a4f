"""Checkpoint files without surprises: streamed safetensors I/O and outputs that appear atomically.

    for name, tensor in iter_safetensors("models/kb-int4/model.safetensors"): ...
    with SafetensorsWriter(path, {"w": ((4096, 1024), torch.uint8)}) as out: out.write("w", tensor)
    with atomic_output_dir("models/kb-small") as tmp: ...   # appears under its name only when complete

Reading tensor by tensor with plain ``readinto`` (no mmap) keeps a loader's resident memory at the
tensors it keeps: an mmap'd file counts in RSS as its pages are touched, which would double the
peak of a quantized load. Writing tensor by tensor lets a 5 GB fp32 checkpoint be produced from
random weights one layer at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import torch

from kmed.artifacts import swap_in

_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def read_safetensors_header(path: str | Path) -> dict:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def iter_safetensors(path: str | Path, names: set[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` in file order, each freshly allocated and read with ``readinto``."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        base = 8 + length
        entries = sorted(
            ((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]
        )
        for name, meta in entries:
            if names is not None and name not in names:
                continue
            start, end = meta["data_offsets"]
            buf = torch.empty(end - start, dtype=torch.uint8)
            f.seek(base + start)
            if end > start:
                f.readinto(memoryview(buf.numpy()))
            yield name, buf.view(_DTYPES[meta["dtype"]]).reshape(meta["shape"])


class SafetensorsWriter:
    """Write a safetensors file whose tensor names, shapes and dtypes are known up front."""

    def __init__(self, path: str | Path, spec: dict[str, tuple[tuple[int, ...], torch.dtype]], metadata: dict | None = None):
        self.path = Path(path)
        self.spec = spec
        header: dict = {"__metadata__": {k: str(v) for k, v in (metadata or {}).items()}} if metadata else {}
        offset = 0
        for name, (shape, dtype) in spec.items():
            nbytes = _element_size(dtype)
            for d in shape:
                nbytes *= int(d)
            header[name] = {"dtype": _NAMES[dtype], "shape": [int(d) for d in shape], "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned
        self._header = header
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(struct.pack("<Q", len(raw)) + raw)
        self._order = [k for k in spec]
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        expected = self._order[self._next]
        if name != expected:
            raise ValueError(f"write {expected!r} next, not {name!r}")
        shape, dtype = self.spec[name]
        if tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
            raise ValueError(f"{name}: expected {shape} {dtype}, got {tuple(tensor.shape)} {tensor.dtype}")
        data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)
        self._file.write(memoryview(data.numpy()))
        self._next += 1

    def close(self) -> None:
        self._file.close()
        if self._next != len(self._order):
            raise ValueError(f"{self.path}: wrote {self._next} of {len(self._order)} tensors")

    def __enter__(self) -> SafetensorsWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


def save_state_dict(path: str | Path, state: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    spec = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    with SafetensorsWriter(path, spec, metadata) as out:
        for k, v in state.items():
            out.write(k, v)


def dir_bytes(path: str | Path, suffixes: tuple[str, ...] = (".safetensors", ".bin", ".pt")) -> int:
    """Bytes of the weight files under ``path`` (what a user downloads to run the model)."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))


@contextlib.contextmanager
def atomic_output_dir(out: str | Path, overwrite: bool = False, keep_on_error: bool = False):
    """Yield a sibling ``<out>.partial-<pid>`` folder; rename it to ``out`` only if the block succeeds.

    An interrupted run leaves at most a ``*.partial-*`` folder (never something named ``out``
    without its manifest). With ``overwrite`` an existing ``out`` is replaced only at the end.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        from kmed.errors import ConfigError

        raise ConfigError(f"출력 폴더가 이미 있어요: {out}", "다른 --out 경로를 쓰거나 --overwrite 를 붙이세요.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        if not keep_on_error:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, out)

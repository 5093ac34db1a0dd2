"""llama.cpp, built once from the llama-cpp-python sdist and found again by every native feature (issue #21).

PyPI serves llama-cpp-python only as an sdist; it vendors the whole llama.cpp tree (the converter,
gguf-py, ``llama-quantize``, ``llama-bench``, ``llama-perplexity``). ``python -m runner.llamacpp.toolchain
build`` (run by ``make setup``) downloads the pinned sdist, checks its sha256, builds the shared
libraries and the three tools with cmake (CPU only, the flags below), installs the Python bindings
without compiling them again, and puts the libraries beside them. Everything lands in one folder
keyed by the version and the flags (`toolchain_dir`), written atomically; a second build is a no-op.

The identity of anything llama.cpp computes is the `Toolchain.identity`: the llama-cpp-python
version, the vendored llama.cpp commit, and the build flags.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receipts.errors import InputError

__all__ = [
    "FLAGS",
    "SDIST_SHA256",
    "TOOLS",
    "VERSION",
    "Toolchain",
    "build",
    "find",
    "toolchain_dir",
]

VERSION = "0.3.36"
"""The pinned llama-cpp-python release (its sdist vendors llama.cpp at `COMMIT`)."""
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
COMMIT = "0c1e570"
"""The vendored llama.cpp commit (``ggml commit`` in the sdist's own cmake output)."""

# CPU only, pinned: x86-64 with AVX2/FMA/F16C (no -march=native, so a build is the same on every
# machine of this kind and runs on any AVX2 CPU), no OpenMP (ggml's own thread pool, so --threads is
# exactly the threads used), no network code.
FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_OPENMP=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    # the tools find their libraries beside them (lib/), wherever the folder is moved to
    "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
    "-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib;$ORIGIN",
)
TOOLS = ("llama-quantize", "llama-bench", "llama-perplexity")
_LIBS = ("libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so")
"""What the Python bindings load (each beside its versioned sonames, which the tools link to)."""


def _flags_key() -> str:
    return hashlib.sha256("\n".join(FLAGS).encode()).hexdigest()[:12]


def toolchain_dir() -> Path:
    """Where the build lives: ``$RECEIPTS_LLAMACPP``, else ``<venv>/llama.cpp/<version>-<flags sha>``."""
    override = os.environ.get("RECEIPTS_LLAMACPP")
    if override:
        return Path(override)
    return Path(sys.prefix) / "llama.cpp" / f"{VERSION}-{_flags_key()}"


@dataclass(frozen=True)
class Toolchain:
    """A finished build: the tools, the converter, and what identifies them."""

    root: Path
    manifest: dict[str, Any]

    def tool(self, name: str) -> Path:
        """The path of ``llama-quantize``, ``llama-bench`` or ``llama-perplexity``."""
        return self.root / "bin" / name

    @property
    def lib(self) -> Path:
        """The folder holding libllama.so and the ggml libraries."""
        return self.root / "lib"

    @property
    def converter(self) -> Path:
        """llama.cpp's ``convert_hf_to_gguf.py`` (run with the vendored gguf-py, `converter_env`)."""
        return self.root / "src" / "convert_hf_to_gguf.py"

    def converter_env(self) -> dict[str, str]:
        """The environment the converter runs in: the vendored gguf-py first on the path, no network."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.root / "src" / "gguf-py"), str(self.root / "src"), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        env["HF_HUB_OFFLINE"] = "1"
        env.pop("NO_LOCAL_GGUF", None)  # the converter then puts its own gguf-py first
        return env

    def tool_env(self) -> dict[str, str]:
        """The environment the tools run in (they find their libraries by rpath; this is belt and braces)."""
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join([str(self.lib), env.get("LD_LIBRARY_PATH", "")]).rstrip(
            os.pathsep
        )
        return env

    @property
    def identity(self) -> dict[str, Any]:
        """What a native result records: versions, the llama.cpp commit and the build flags' digest."""
        return {
            "llama_cpp_python": self.manifest["version"],
            "llama_cpp_commit": self.manifest["commit"],
            "build_flags_sha256": self.manifest["flags_sha256"],
        }


def find() -> Toolchain:
    """The finished build in `toolchain_dir`.

    Raises:
        InputError: there is none (``make setup`` builds it) or it is incomplete.
    """
    root = toolchain_dir()
    manifest_file = root / "toolchain.json"
    hint = f"run `make setup`, or `{Path(sys.executable).name} -m runner.llamacpp.toolchain build`"
    if not manifest_file.is_file():
        raise InputError(f"llama.cpp is not built here (no {manifest_file})", file=root, hint=hint)
    try:
        manifest = json.loads(manifest_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"the llama.cpp build manifest is unreadable: {exc}", file=manifest_file, hint=hint
        ) from exc
    chain = Toolchain(root, manifest)
    missing = [t for t in TOOLS if not os.access(chain.tool(t), os.X_OK)]
    missing += [lib for lib in _LIBS if not (chain.lib / lib).is_file()]
    if not chain.converter.is_file():
        missing.append("convert_hf_to_gguf.py")
    if missing:
        raise InputError(
            f"the llama.cpp build is incomplete: {', '.join(missing)} missing", file=root, hint=hint
        )
    return chain


_PIP = (sys.executable, "-m", "pip")


def _download(into: Path, sdist: Path | None) -> Path:
    if sdist is None:
        spec = f"llama-cpp-python=={VERSION}"
        subprocess.run(
            [*_PIP, "download", "--quiet", "--no-deps", "--no-binary", ":all:", spec, "-d", str(into)],
            check=True,
        )
        sdist = into / f"llama_cpp_python-{VERSION}.tar.gz"
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise InputError(
            f"the llama-cpp-python sdist's sha256 is {digest}, not the pinned {SDIST_SHA256}",
            file=sdist,
            hint="the download was corrupted or the release was replaced; do not build from it",
        )
    return sdist


def _extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    return into / f"llama_cpp_python-{VERSION}"


def _install_bindings(source: Path, lib: Path) -> None:
    """The Python bindings, without compiling llama.cpp a second time; then the libraries beside them."""
    env = dict(os.environ, CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", str(source)], check=True, env=env)
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util as u; print(u.find_spec('llama_cpp').submodule_search_locations[0])",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, LLAMA_CPP_LIB_PATH=str(lib)),
    )
    target = Path(found.stdout.strip()) / "lib"
    target.mkdir(exist_ok=True)
    for item in lib.iterdir():
        (target / item.name).unlink(missing_ok=True)
        shutil.copy2(item, target / item.name, follow_symlinks=False)


def build(sdist: Path | None = None, *, jobs: int | None = None) -> Toolchain:
    """Build llama.cpp into `toolchain_dir` unless it is there already; print each step's wall time.

    Raises:
        InputError: the sdist's digest is not the pinned one.
        subprocess.CalledProcessError: a build step failed (its output is on the terminal).
    """
    root = toolchain_dir()
    try:
        return find()
    except InputError:
        pass
    root.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        source = _extract(_download(work, sdist), work)
        vendor = source / "vendor" / "llama.cpp"
        build_dir = work / "build"
        configure = ["cmake", "-S", str(vendor), "-B", str(build_dir), *FLAGS]
        configure += [f"-DLLAMA_BUILD_COMMIT={COMMIT}", "-DLLAMA_BUILD_NUMBER=0"]
        step = time.monotonic()
        subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
        targets = ["llama", *TOOLS]
        parallel = str(jobs or os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", parallel, "--target", *targets], check=True)
        print(f"llama.cpp {COMMIT}: compiled in {time.monotonic() - step:.0f} s", flush=True)
        staged = work / "staged"
        (staged / "bin").mkdir(parents=True)
        (staged / "lib").mkdir()
        for tool in TOOLS:
            shutil.copy2(build_dir / "bin" / tool, staged / "bin" / tool)
        for lib in sorted((build_dir / "bin").glob("lib*.so*")):
            shutil.copy2(lib, staged / "lib" / lib.name, follow_symlinks=False)
        (staged / "src").mkdir()
        for name in ("convert_hf_to_gguf.py", "gguf-py", "conversion", "LICENSE"):
            path = vendor / name
            if path.is_dir():
                shutil.copytree(path, staged / "src" / name)
            elif path.is_file():
                shutil.copy2(path, staged / "src" / name)
        step = time.monotonic()
        _install_bindings(source, staged / "lib")
        print(
            f"llama-cpp-python {VERSION}: bindings installed in {time.monotonic() - step:.0f} s", flush=True
        )
        manifest = {
            "version": VERSION,
            "commit": COMMIT,
            "sdist_sha256": SDIST_SHA256,
            "flags": list(FLAGS),
            "flags_sha256": hashlib.sha256("\n".join(FLAGS).encode()).hexdigest(),
            "machine": platform.machine(),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staged / "toolchain.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staged, root)
    print(f"llama.cpp toolchain ready in {root} ({manifest['build_seconds']:.0f} s)", flush=True)
    return find()


def main(argv: list[str] | None = None) -> int:
    """``python -m runner.llamacpp.toolchain build [--sdist FILE]`` / ``where``."""
    parser = argparse.ArgumentParser(prog="python -m runner.llamacpp.toolchain")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="build llama.cpp from the pinned llama-cpp-python sdist (once)")
    make.add_argument("--sdist", type=Path, help="a downloaded sdist (its sha256 is checked)")
    make.add_argument("--jobs", type=int, help="parallel compile jobs (default: every core)")
    sub.add_parser("where", help="print the build folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.sdist, jobs=args.jobs)
        else:
            print(find().root)
    except InputError as exc:
        print(f"receipts: {exc.diagnostics()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

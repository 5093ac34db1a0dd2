"""``receipts quantize``: a model folder → GGUF quantizations, by llama.cpp's converter and quantizer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from receipts.cli.app import app, err, out, shown

__all__ = ["quantize"]

ModelDir = Annotated[
    Path, typer.Argument(help="The Hugging Face model folder (save_pretrained) to quantize.")
]
To = Annotated[str, typer.Option("--to", help="Quantizations, comma-separated, e.g. Q8_0,Q4_K_M.")]
OutDir = Annotated[
    Path, typer.Option("--out", help="The folder to write the GGUF files and manifest.json into.")
]
Base = Annotated[str, typer.Option(help="The full-precision GGUF quantized from: F16 or BF16.")]
Name = Annotated[
    str | None, typer.Option(help="File name stem (NAME.Q4_K_M.gguf); default: the folder's name.")
]
Threads = Annotated[int, typer.Option(min=1, help="Threads llama-quantize uses.")]


@app.command()
def quantize(
    model_dir: ModelDir, to: To, out_dir: OutDir, base: Base = "F16", name: Name = None, threads: Threads = 1
) -> None:
    """Quantize a model folder to GGUF with llama.cpp: convert to F16/BF16, then llama-quantize each type.

    Conversions are cached by the folder's weights digest and the llama.cpp build (a second call converts
    nothing). --out gets NAME.QUANT.gguf per type and manifest.json (schema/quantize-manifest): the source
    digest, the llama.cpp build and each file's sha256, the lineage a llamacpp: run of a file signs.

    Example: receipts quantize models/student --to Q8_0,Q4_K_M --out models/student-gguf
    """
    from runner.llamacpp.quantize import parse_quants
    from runner.llamacpp.quantize import quantize as run_quantize

    done = run_quantize(
        model_dir,
        parse_quants(to),
        out_dir,
        base=base.upper(),
        name=name,
        threads=threads,
        log=lambda line: err.print(shown(line)),
    )
    for entry in done.manifest["outputs"]:
        out.print(
            f"{shown(entry['quant'])}: {shown(out_dir / entry['file'])} ({entry['bytes'] / 1e6:.1f} MB)"
        )
    out.print(f"wrote {shown(done.manifest_file)}")

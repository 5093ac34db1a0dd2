"""``receipts quant-kld``: a quantized GGUF against its full-precision base on a text (llama.cpp terms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from receipts.cli.app import app, err, out

__all__ = ["quant_kld"]


def _pm(stats: dict[str, Any], name: str, scale: float = 1.0, digits: int = 6) -> str:
    value, unc = stats[name], stats.get(f"{name}_unc")
    shown = f"{value * scale:.{digits}f}"
    return shown if unc is None else f"{shown} ± {unc * scale:.{digits}f}"


def _report(found: dict[str, Any]) -> list[str]:
    s = found["statistics"]
    lines = [
        f"{found['quant']['file']} vs {found['base']['file']} on {found['text']['file']}: "
        f"{found['chunks']} chunks of {found['ctx']} tokens, {s['tokens']} tokens scored",
        f"  Mean PPL(Q)               : {s['ppl']:.6f}",
        f"  Mean PPL(base)            : {s['ppl_base']:.6f}",
        f"  Mean ln(PPL(Q)/PPL(base)) : {_pm(s, 'ln_ppl_ratio')}",
        f"  Mean    KLD : {_pm(s, 'mean_kld')}",
    ]
    for label, name in (("Maximum", "kld_max"), ("99.0%  ", "kld_p99"), ("95.0%  ", "kld_p95"),
                        ("90.0%  ", "kld_p90"), ("Median ", "kld_median")):  # fmt: skip
        lines.append(f"  {label} KLD : {s[name]:.6f}")
    lines += [
        f"  Mean    Δp  : {_pm(s, 'delta_p_mean', 100, 3)} %",
        f"  RMS Δp      : {_pm(s, 'delta_p_rms', 100, 3)} %",
        f"  Same top p  : {_pm(s, 'same_top_rate', 100, 3)} %",
    ]
    return lines


def _pair(files: list[Path]) -> tuple[Path, Path]:
    """``(base, quant)``: both given, or the base a quantize manifest names for the one file given.

    Raises:
        UsageError: not one or two files, or one file without lineage.
    """
    from receipts.errors import UsageError

    if len(files) == 2:
        return files[0], files[1]
    if len(files) != 1:
        raise UsageError(f"quant-kld takes BASE.gguf QUANT.gguf or QUANT.gguf, not {len(files)} files")
    from runner.llamacpp.fidelity import base_file
    from runner.llamacpp.model import check_gguf
    from runner.llamacpp.quantize import lineage_of

    quant = check_gguf(files[0])
    lineage = lineage_of(quant)
    if lineage is None or lineage["quant"] == lineage["base"]:
        raise UsageError(
            f"{quant.name}: no quantize manifest beside it names it a quantization, so its base is unknown",
            hint="give the base too: receipts quant-kld BASE.gguf QUANT.gguf --text FILE",
        )
    return base_file(quant, lineage), quant


@app.command("quant-kld")
def quant_kld(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="BASE.gguf QUANT.gguf: the full-precision GGUF and a quantization of it; or QUANT.gguf "
            "alone, when `receipts quantize` made it (its base is the F16 file its manifest names)."
        ),
    ],
    text: Annotated[
        Path, typer.Option("--text", help="A UTF-8 text file to score (at least 2 x --ctx tokens).")
    ],
    ctx: Annotated[int, typer.Option("--ctx", help="Tokens per chunk (llama-perplexity's -c).")] = 512,
    chunks: Annotated[
        int | None, typer.Option("--chunks", help="Score only the first N chunks (default: all).")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for llama.cpp.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print every statistic as JSON.")] = False,
) -> None:
    """KL divergence of a quantized GGUF from its base on a text, as `llama-perplexity --kl-divergence`.

    The text is tokenized by the base model and cut into chunks of --ctx tokens; each chunk's second half
    is scored. Reported as llama-perplexity reports it: mean KLD ± its uncertainty, KLD percentiles, Δp of
    the actual next token, RMS Δp, the same-top-token rate and ln(PPL(Q)/PPL(base)). The numbers equal
    `llama-perplexity -c N -b N -t 1` (one chunk per batch); its default -b 2048 evaluates several chunks
    at once, which moves their last digits.

    Example: receipts quant-kld out/student.F16.gguf out/student.Q4_K_M.gguf --text wiki.test.raw --ctx 512
    """
    from receipts.errors import UsageError
    from runner.llamacpp.kld import compare_text  # lazily: the kernel reaches the runner only here

    if threads < 1:
        raise UsageError(f"--threads {threads}: must be at least 1")
    base, quant = _pair(files)
    found = compare_text(base, quant, text, ctx=ctx, chunks=chunks, threads=threads).as_json()
    if as_json:
        out.print_json(json.dumps(found))
        return
    if found["statistics"]["tokens"] < 100:
        err.print("note: fewer than 100 tokens scored; llama-perplexity prints no statistics for so few")
    for line in _report(found):
        out.print(escape(line))

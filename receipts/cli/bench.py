"""``receipts bench``: measure what a model costs to run on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, err, out
from receipts.errors import UsageError

__all__ = ["bench"]


# The options, one type each, so the command's signature reads as the list of what it takes.
Spec = Annotated[
    str,
    typer.Argument(help="The model: hf:DIR or gguf:FILE (via transformers), llamacpp:FILE (via llama.cpp)."),
]
OutFile = Annotated[Path, typer.Option("--out", help="Where to write footprint.json (schema/footprint).")]
Quant = Annotated[
    str | None,
    typer.Option(
        help="Quantizations to bench, comma-separated: fp32, bf16, int8 (default fp32). "
        "A llamacpp: file is benched at its own quantization."
    ),
]
PromptTokens = Annotated[int, typer.Option(min=1, help="Prompt length N in tokens.")]
NewTokens = Annotated[int, typer.Option(help="New tokens G per call (greedy, exactly G).")]
Concurrency = Annotated[str, typer.Option(help="Requests served together, comma-separated, e.g. 1,4.")]
RamBudget = Annotated[
    str | None,
    typer.Option(help="RAM budget for max usable context, e.g. 16GB or 16GiB (default: all RAM)."),
]
TtftBudget = Annotated[float, typer.Option(help="Time-to-first-token budget (s) for max usable context.")]
PricePerHour = Annotated[
    float | None, typer.Option(help="Machine price per hour, for cost_per_1k_calls (recorded as given).")
]
Currency = Annotated[str, typer.Option(help="Currency of --price-per-hour.")]
Watts = Annotated[
    float | None,
    typer.Option(help="Power draw (W) for an *estimated* energy where no counter is readable."),
]
Threads = Annotated[int, typer.Option(min=1, help="CPU threads (pinned before torch loads, read back).")]
Device = Annotated[str, typer.Option(help="cpu or cuda.")]
Warmups = Annotated[int, typer.Option(min=0, help="Full-length warm-up calls per point (≥ 3 for VALID).")]
MinDuration = Annotated[
    float, typer.Option(min=0.0, help="Seconds of timed calls per point (≥ 10 for VALID).")
]
MinCalls = Annotated[int, typer.Option(min=1, help="Timed calls per point (≥ 30 for VALID).")]
ContextSearch = Annotated[
    bool, typer.Option("--context-search/--no-context-search", help="Search max usable context.")
]
MaxContext = Annotated[int | None, typer.Option(min=1, help="Stop the context search at this many tokens.")]
PageCache = Annotated[str, typer.Option(help="warm (read weights first) or cold (evict them) before load.")]
Timeout = Annotated[float, typer.Option(help="Seconds before one measurement process is stopped.")]
Resume = Annotated[bool, typer.Option(help="Continue an interrupted bench of the same --out.")]
Force = Annotated[bool, typer.Option(help="Discard an interrupted bench of the same --out.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the footprint summary as JSON.")]


@app.command()
def bench(
    spec: Spec,
    out_file: OutFile,
    quant: Quant = None,
    prompt_tokens: PromptTokens = 128,
    new_tokens: NewTokens = 32,
    concurrency: Concurrency = "1",
    ram_budget: RamBudget = None,
    ttft_budget: TtftBudget = 10.0,
    price_per_hour: PricePerHour = None,
    currency: Currency = "USD",
    watts: Watts = None,
    threads: Threads = 1,
    device: Device = "cpu",
    warmups: Warmups = 3,
    min_duration: MinDuration = 10.0,
    min_calls: MinCalls = 30,
    context_search: ContextSearch = True,
    max_context: MaxContext = None,
    page_cache: PageCache = "warm",
    timeout: Timeout = 1800.0,
    resume: Resume = False,
    force: Force = False,
    as_json: AsJson = False,
) -> None:
    """Measure what a model costs to run here: memory, latency, throughput, context, quantizations.

    Every point runs in a fresh process with pinned threads; raw per-call samples, percentiles (only
    with enough samples), a bootstrap CI of the median, a roofline from measured memory bandwidth and a
    VALID/INVALID verdict with reasons go into footprint.json (schema/footprint).

    Example: receipts bench hf:models/student --quant fp32,int8 --ram-budget 16GB --out runs/s/footprint.json

    Example: receipts bench llamacpp:quants/student.Q4_K_M.gguf --threads 2 --out runs/q4/footprint.json
    """
    from runner.bench import BenchConfig, parse_ints, parse_quants, parse_size
    from runner.bench import bench as run_bench
    from runner.bench.footprint import summary_lines

    if resume and force:
        raise UsageError("--resume and --force contradict each other", hint="choose one")
    config = BenchConfig(
        spec=spec,
        quants=parse_quants(quant) if quant is not None else (),
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        concurrency=parse_ints(concurrency, "--concurrency"),
        ram_budget_bytes=parse_size(ram_budget) if ram_budget else None,
        ttft_budget_s=ttft_budget,
        price_per_hour=price_per_hour,
        currency=currency,
        watts=watts,
        threads=threads,
        device=device,
        warmups=warmups,
        min_duration_s=min_duration,
        min_calls=min_calls,
        context_search=context_search,
        max_context=max_context,
        page_cache=page_cache,
        point_timeout_s=timeout,
    )
    progress = (lambda _: None) if as_json else (lambda m: err.print(escape(m)))
    footprint = run_bench(config, out_file, resume=resume, force=force, progress=progress)
    if as_json:
        out.print_json(json.dumps(footprint["summary"]))
        return
    for line in summary_lines(footprint):
        out.print(line)
    out.print(f"wrote {escape(str(out_file))}")

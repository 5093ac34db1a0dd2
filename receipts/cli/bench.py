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


def _csv_ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a comma-separated list of integers", hint=f"e.g. {option} 1,4"
        ) from None
    return values


@app.command()
def bench(
    spec: Annotated[str, typer.Argument(help="The model to measure: hf:DIR or gguf:FILE.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write footprint.json (schema/footprint).")
    ],
    quant: Annotated[
        str, typer.Option(help="Quantizations to bench, comma-separated: fp32, bf16, int8.")
    ] = "fp32",
    prompt_tokens: Annotated[int, typer.Option(min=1, help="Prompt length N in tokens.")] = 128,
    new_tokens: Annotated[int, typer.Option(help="New tokens G per call (greedy, exactly G).")] = 32,
    concurrency: Annotated[
        str, typer.Option(help="Requests served together, comma-separated, e.g. 1,4.")
    ] = "1",
    ram_budget: Annotated[
        str | None,
        typer.Option(help="RAM budget for max usable context, e.g. 16GB or 16GiB (default: all RAM)."),
    ] = None,
    ttft_budget: Annotated[
        float, typer.Option(help="Time-to-first-token budget (s) for max usable context.")
    ] = 10.0,
    price_per_hour: Annotated[
        float | None, typer.Option(help="Machine price per hour, for cost_per_1k_calls (recorded as given).")
    ] = None,
    currency: Annotated[str, typer.Option(help="Currency of --price-per-hour.")] = "USD",
    watts: Annotated[
        float | None,
        typer.Option(help="Power draw (W) for an *estimated* energy where no counter is readable."),
    ] = None,
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads (pinned before torch loads, read back).")
    ] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    warmups: Annotated[
        int, typer.Option(min=0, help="Full-length warm-up calls per point (≥ 3 for VALID).")
    ] = 3,
    min_duration: Annotated[
        float, typer.Option(min=0.0, help="Seconds of timed calls per point (≥ 10 for VALID).")
    ] = 10.0,
    min_calls: Annotated[int, typer.Option(min=1, help="Timed calls per point (≥ 30 for VALID).")] = 30,
    context_search: Annotated[
        bool, typer.Option("--context-search/--no-context-search", help="Search max usable context.")
    ] = True,
    max_context: Annotated[
        int | None, typer.Option(min=1, help="Stop the context search at this many tokens.")
    ] = None,
    page_cache: Annotated[
        str, typer.Option(help="warm (read weights first) or cold (evict them) before load.")
    ] = "warm",
    timeout: Annotated[
        float, typer.Option(help="Seconds before one measurement process is stopped.")
    ] = 1800.0,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted bench of the same --out.")] = False,
    force: Annotated[bool, typer.Option(help="Discard an interrupted bench of the same --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the footprint summary as JSON.")] = False,
) -> None:
    """Measure what a model costs to run here: memory, latency, throughput, context, quantizations.

    Every point runs in a fresh process with pinned threads; raw per-call samples, percentiles (only
    with enough samples), a bootstrap CI of the median, a roofline from measured memory bandwidth and a
    VALID/INVALID verdict with reasons go into footprint.json (schema/footprint).

    Example: receipts bench hf:models/student --quant fp32,int8 --ram-budget 16GB --out runs/s/footprint.json
    """
    from runner.bench import BenchConfig, parse_quants, parse_size
    from runner.bench import bench as run_bench

    if resume and force:
        raise UsageError("--resume and --force contradict each other", hint="choose one")
    config = BenchConfig(
        spec=spec,
        quants=parse_quants(quant),
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        concurrency=_csv_ints(concurrency, "--concurrency"),
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
    footprint = run_bench(
        config,
        out_file,
        resume=resume,
        force=force,
        progress=(lambda _: None) if as_json else (lambda m: err.print(escape(m))),
    )
    summary = footprint["summary"]
    if as_json:
        out.print_json(json.dumps(summary))
        return
    verdict = footprint["verdict"]
    for row in summary["by_quant"].values():
        if row["status"] != "ok":
            out.print(
                f"[bold]{escape(row['quant'])}[/bold] c{row['concurrency']}:"
                f" [red]{escape(row['status'])}[/red]"
            )
            continue
        out.print(
            f"[bold]{escape(row['quant'])}[/bold] c{row['concurrency']}:"
            f" peak RSS {row['peak_rss_bytes'] / 1e9:.2f} GB"
            f" · TTFT p50 {_fmt(row['ttft_p50_s'], '.3f')} s · TPOT p50 {_fmt(row['tpot_p50_s'], '.4f')} s"
            f" · decode {_fmt(row['decode_tps_p50'], '.1f')} tok/s"
            f" · {_fmt(row['throughput_rps'], '.2f')} req/s"
            f" · roofline {_fmt(row['roofline_fraction'], '.0%')}"
        )
    out.print(
        f"max usable context: {summary['max_usable_context'] or 'n/a'}"
        f" · cost/1k calls: {_fmt(summary['cost_per_1k_calls'], '.4f')} {escape(summary['currency'] or '')}"
        f" · machine-seconds/1k calls {_fmt(summary['machine_seconds_per_1k_calls'], '.1f')}"
    )
    colour = "green" if verdict["status"] == "VALID" else "yellow"
    out.print(f"verdict: [{colour}]{verdict['status']}[/{colour}]")
    for reason in verdict["reasons"]:
        if reason["severity"] == "invalid":
            out.print(f"  {escape(reason['code'])}: {escape(reason['detail'])}")
    out.print(f"wrote {escape(str(out_file))}")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)

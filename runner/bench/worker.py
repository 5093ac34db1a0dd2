"""One measurement point of `receipts bench`, in a fresh process: ``python -m runner.bench.worker JOB``.

The parent (`runner.bench.driver`) writes a job file and reads back the result file the job names.
Threads are set from the job *before* torch is imported and read back from torch afterwards. The model
is loaded and driven through its backend (`runner.backends.hf.HFBackend`: ``decode_batch`` and
``decode``, greedy with exactly G new tokens and a per-step clock); this module times the calls.

A watchdog thread enforces the RAM budget (and, for context probes, the TTFT budget): when one is
exceeded the worker writes its verdict and exits at once, so a budget that cannot be met costs at most
the budget, never a hang or the host's OOM killer.

Modes:
  ``point``  load, ≥ warm-ups full-length calls, then timed calls until both the minimum duration and
             the minimum call count are reached; raw per-call samples come back.
  ``probe``  load, one short warm-up, two calls with a prompt of ``prompt_tokens`` tokens: does this
             context fit the RAM and TTFT budgets? (used by the ``max_usable_context`` search).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runner.bench.host import (
    cpu_times,
    page_cache_residency,
    peak_rss_bytes,
    rapl_energy_uj,
    rss_bytes,
    steal_fraction,
    swap_counters,
)

if TYPE_CHECKING:
    from runner.backends.hf import HFBackend
    from runner.llamacpp.timing import NativeDecoder

__all__ = ["PASSAGE", "main", "measure", "passage_prompts"]

# The passage prompts are cut from; real prose so a word-piece tokenizer sees ordinary text.
PASSAGE = (
    "The committee met on Tuesday to review the quarterly report. Revenue rose in every region except "
    "the north, where a late harvest delayed shipments of grain and fruit. The board asked the finance "
    "team to explain the change in operating costs, which grew faster than sales for the second quarter "
    "in a row. Engineers presented a plan to replace the old cooling system at the main plant; it would "
    "cut energy use by a fifth and pay for itself within three years. After a short debate the members "
    "approved the budget, set the date of the next meeting and thanked the staff for their work. "
)

EXIT_BUDGET = 3  # the watchdog stopped the worker (the result file says which budget)


class _Watchdog(threading.Thread):
    """Samples RSS (and NVML memory on CUDA); stops the process when a budget is exceeded."""

    def __init__(self, job: dict[str, Any], result: dict[str, Any], interval: float):
        super().__init__(daemon=True)
        self.job, self.result, self.interval = job, result, interval
        self.peak_rss = 0
        self.peak_nvml: int | None = None
        self.call_start: float | None = None
        self.first_token = False
        self.nvml: Any = None
        self.lock = threading.Lock()

    def stop_with(self, status: str, detail: str) -> None:
        with self.lock:
            self.result.update(status=status, detail=detail, peak_rss_sampled_bytes=self.peak_rss)
            _write(self.job, self.result)
            os._exit(EXIT_BUDGET)

    def run(self) -> None:
        budget = self.job.get("ram_budget_bytes")
        ttft_budget = self.job.get("ttft_budget_s") if self.job["mode"] == "probe" else None
        while True:
            rss = rss_bytes() or 0
            self.peak_rss = max(self.peak_rss, rss)
            if self.nvml is not None:
                used = self.nvml()
                self.peak_nvml = max(self.peak_nvml or 0, used)
            if budget and rss > budget:
                self.stop_with("over_ram_budget", f"resident memory reached {rss} bytes > budget {budget}")
            start = self.call_start
            if ttft_budget and start is not None and not self.first_token:
                waited = time.perf_counter() - start
                if waited > ttft_budget:
                    self.stop_with(
                        "over_ttft_budget", f"no first token after {waited:.2f} s > budget {ttft_budget} s"
                    )
            time.sleep(self.interval)


def _write(job: dict[str, Any], result: dict[str, Any]) -> None:
    path = Path(job["result"])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result), "utf-8")
    os.replace(tmp, path)


def _weights_bytes(model: Any) -> tuple[int, int]:
    """(bytes, elements) of every distinct tensor in the state dict.

    Tied weights count once; the int8 packed weights of dynamic quantization count as stored.
    """
    import torch

    seen: set[int] = set()
    total = elements = 0

    def add(value: Any) -> None:
        nonlocal total, elements
        if isinstance(value, torch.Tensor):
            key = id(value) if value.is_quantized else value.untyped_storage().data_ptr()
            if key in seen:
                return
            seen.add(key)
            total += value.numel() * value.element_size()
            elements += value.numel() if value.is_floating_point() or value.is_quantized else 0
        elif isinstance(value, (tuple, list)):
            for item in value:
                add(item)

    for value in model.state_dict(keep_vars=True).values():
        add(value)
    return total, elements


def passage_prompts(tokenizer: Any, tokens: int, rows: int) -> tuple[list[list[int]], list[str]]:
    """``rows`` prompts of exactly ``tokens`` token ids each (different offsets into the passage)."""
    ids: list[int] = list(tokenizer.encode(PASSAGE, add_special_tokens=False))
    if not ids:
        raise RuntimeError("the tokenizer encodes the prompt passage to no tokens")
    prompts, texts = [], []
    for row in range(rows):
        offset = (row * 7) % len(ids)
        need = offset + tokens
        stream = ids * (need // len(ids) + 1)
        cut = stream[offset:need]
        prompts.append(cut)
        texts.append(str(tokenizer.decode(cut)))
    return prompts, texts


def _energy_reader(device: str) -> tuple[str, Any]:
    """(``measured`` source name, a function returning joules so far) or (``unavailable``, None)."""
    if device == "cuda":
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return "nvml", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000
        except Exception:
            return "unavailable", None
    if rapl_energy_uj() is None:
        return "unavailable", None
    return "rapl", lambda: (rapl_energy_uj() or 0) / 1e6


def _nvml_used(device: str) -> Any:
    if device != "cuda":
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


class _Decoder(Protocol):
    """What the timed calls need of a backend: `HFBackend`, or llama.cpp's `NativeDecoder`."""

    tokenizer: Any

    def decode_batch(self, prompts: Sequence[Sequence[int]]) -> Any: ...

    def decode(self, batch: Any, new_tokens: int, on_step: Callable[[], None]) -> int: ...


class _Caller:
    """Timed calls of the backend's greedy decoding: start, a clock reading per new token, end."""

    def __init__(self, backend: _Decoder, watchdog: _Watchdog):
        self.backend, self.watchdog = backend, watchdog
        self.stamps: list[float] = []

    def _step(self) -> None:
        self.stamps.append(time.perf_counter())
        self.watchdog.first_token = True

    def __call__(self, batch: Any, new_tokens: int) -> tuple[float, list[float], float, int]:
        """``(start, token times, end, new tokens made)`` of one call; tokenisation is not in it."""
        self.stamps.clear()
        self.watchdog.first_token = False
        start = time.perf_counter()
        self.watchdog.call_start = start
        made = self.backend.decode(batch, new_tokens, self._step)
        end = time.perf_counter()
        self.watchdog.call_start = None
        return start, list(self.stamps), end, made


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (see the module doc); return the result document."""
    result: dict[str, Any] = {"status": "running", "pid": os.getpid()}
    device = job.get("device", "cpu")
    watchdog = _Watchdog(job, result, 0.02 if job["mode"] == "probe" else 0.05)
    watchdog.nvml = _nvml_used(device)
    watchdog.start()
    result["page_cache_resident_fraction"] = page_cache_residency([Path(f) for f in job["load_files"]])
    torch = None
    if job.get("kind") == "llamacpp":
        backend: Any = _load_native(job, result)
    else:
        torch = _import_runtime(job, result, device)
        if result["status"] != "running":
            return result
        backend = _load(job, result, torch, device)
    if backend is None:
        return result
    n, g = int(job["prompt_tokens"]), int(job["new_tokens"])
    max_positions = result["max_position_embeddings"]
    if max_positions and n + g > max_positions:
        result.update(
            status="failed",
            detail=f"prompt {n} + new {g} tokens exceed the model's {max_positions} positions",
        )
        return result
    prompts, texts = passage_prompts(backend.tokenizer, n, int(job.get("concurrency", 1)))
    caller = _Caller(backend, watchdog)
    if job["mode"] == "probe":
        _probe(caller, prompts, result)
    else:
        _timed_calls(job, caller, prompts, texts, result)
    result.update(peak_rss_bytes=peak_rss_bytes(), peak_rss_sampled_bytes=watchdog.peak_rss)
    if torch is not None:
        _vram(result, torch, device, watchdog)
    else:
        backend.close()
    return result


def _import_runtime(job: dict[str, Any], result: dict[str, Any], device: str) -> Any:
    """Import torch and the backend (timed), pin threads, and record the runtime; torch, the module.

    Sets ``status`` to failed when ``--device cuda`` finds no CUDA device.
    """
    started = time.perf_counter()
    # import_s: torch, transformers and the backend package (numpy with it), as a model load pays them
    from runner.backends.extras import requires

    with requires("runner", "receipts bench"):
        import torch
        import transformers

        from runner.backends import hf  # noqa: F401 - its import time is part of import_s
    result["import_s"] = time.perf_counter() - started
    threads = int(job["threads"])
    torch.set_num_threads(threads)
    result["threads"] = {
        "requested": threads,
        "torch_num_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env": {
            k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
    }
    result["torch"] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "parallel": torch.__config__.parallel_info().splitlines()[:3],
        "mkldnn": bool(torch.backends.mkldnn.is_available()),  # type: ignore[no-untyped-call]
        "transformers": transformers.__version__,
    }
    if device == "cuda":
        if not torch.cuda.is_available():
            result.update(status="failed", detail="--device cuda but torch sees no CUDA device")
            return torch
        result["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "capability": list(torch.cuda.get_device_capability(0)),
        }
    return torch


def _load(job: dict[str, Any], result: dict[str, Any], torch: Any, device: str) -> HFBackend | None:
    """Load the model through its backend (timed) and record memory; None when over the RAM budget."""
    from runner.backends.base import ModelIdentity
    from runner.backends.hf import HFBackend

    rss_before = rss_bytes()
    t0 = time.perf_counter()
    identity = ModelIdentity(**job["identity"])
    backend = HFBackend(identity, Path(job["folder"]), job["variant"], device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    result["load_time_s"] = time.perf_counter() - t0
    model = backend.model
    result["runtime_quant"] = identity.runtime_quant
    result["rss_after_load_bytes"] = rss_bytes()
    result["rss_before_load_bytes"] = rss_before
    result["weights_bytes_resident"], result["params"] = _weights_bytes(model)
    result["compute_dtype"] = str(next(iter(model.parameters())).dtype).removeprefix("torch.")
    budget = job.get("ram_budget_bytes")
    if budget and peak_rss_bytes() > budget:
        result.update(
            status="over_ram_budget",
            detail=f"peak RSS {peak_rss_bytes()} bytes after loading > budget {budget}",
            peak_rss_bytes=peak_rss_bytes(),
        )
        return None
    result["max_position_embeddings"] = getattr(model.config, "max_position_embeddings", None)
    return backend


def _load_native(job: dict[str, Any], result: dict[str, Any]) -> NativeDecoder | None:
    """Load the GGUF into llama.cpp (timed; the context holds N + G tokens) and record what it is.

    None when over the RAM budget. llama.cpp's threads are read back from the context.
    """
    started = time.perf_counter()
    from runner.llamacpp.timing import NativeDecoder, bindings
    from runner.llamacpp.toolchain import find

    bindings()
    result["import_s"] = time.perf_counter() - started
    result["llama_cpp"] = find().identity
    threads, n_ctx = int(job["threads"]), int(job["prompt_tokens"]) + int(job["new_tokens"])
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    decoder = NativeDecoder(Path(job["file"]), n_ctx=n_ctx, threads=threads)
    result["load_time_s"] = time.perf_counter() - t0
    facts = decoder.facts
    result.update(
        rss_before_load_bytes=rss_before,
        rss_after_load_bytes=rss_bytes(),
        weights_bytes_resident=facts["weights_bytes"],
        params=facts["params"],
        compute_dtype="native",  # llama.cpp computes with the stored types (as the llamacpp: identity says)
        runtime_quant=None,
        threads={"requested": threads, **facts["threads"]},
        llama_context=facts["context"],
    )
    budget = job.get("ram_budget_bytes")
    if budget and peak_rss_bytes() > budget:
        result.update(
            status="over_ram_budget",
            detail=f"peak RSS {peak_rss_bytes()} bytes after loading > budget {budget}",
            peak_rss_bytes=peak_rss_bytes(),
        )
        return None
    result["max_position_embeddings"] = facts["n_ctx_train"]
    return decoder


def _probe(caller: _Caller, prompts: list[list[int]], result: dict[str, Any]) -> None:
    """Does this context fit? One short warm-up, then the TTFT of two calls at the full prompt length."""
    batch = caller.backend.decode_batch(prompts)
    caller(caller.backend.decode_batch([p[: min(8, len(p))] for p in prompts]), 2)
    ttfts = []
    for _ in range(2):
        start, times, _end, _made = caller(batch, 2)
        ttfts.append(times[0] - start)
    result.update(status="ok", ttft_s=max(ttfts), ttft_samples_s=ttfts)


def _timed_calls(
    job: dict[str, Any], caller: _Caller, prompts: list[list[int]], texts: list[str], result: dict[str, Any]
) -> None:
    """Warm-ups, then timed calls until both the minimum duration and the minimum call count are met."""
    batch = caller.backend.decode_batch(prompts)
    g = int(job["new_tokens"])
    for _ in range(int(job["warmups"])):
        caller(batch, g)
    energy_source, joules = _energy_reader(job.get("device", "cpu"))
    samples: dict[str, list[Any]] = {
        "start_s": [],
        "e2e_s": [],
        "token_times_s": [],
        "tokenize_s": [],
        "energy_j": [],
    }
    lengths: list[int] = []
    cpu0, swap0 = cpu_times(), swap_counters()
    loop_start = time.perf_counter()
    min_duration, min_calls = float(job["min_duration_s"]), int(job["min_calls"])
    max_calls = int(job.get("max_calls") or 1_000_000)
    while len(samples["e2e_s"]) < max_calls:
        elapsed = time.perf_counter() - loop_start
        if len(samples["e2e_s"]) >= max(1, min_calls) and elapsed >= min_duration:
            break
        tok_start = time.perf_counter()
        caller.backend.tokenizer(texts)
        samples["tokenize_s"].append(time.perf_counter() - tok_start)
        e0 = joules() if joules else None
        start, times, end, made = caller(batch, g)
        e1 = joules() if joules else None
        samples["start_s"].append(start - loop_start)
        samples["e2e_s"].append(end - start)
        samples["token_times_s"].append([t - start for t in times])
        samples["energy_j"].append(None if e0 is None or e1 is None else e1 - e0)
        lengths.append(made)
    duration = time.perf_counter() - loop_start
    cpu1, swap1 = cpu_times(), swap_counters()
    result.update(
        status="ok",
        calls=len(samples["e2e_s"]),
        duration_s=duration,
        samples=samples,
        new_tokens_made=sorted(set(lengths)),
        energy_source=energy_source,
        steal_fraction=steal_fraction(cpu0, cpu1),
        swapped_pages={k: swap1.get(k, 0) - swap0.get(k, 0) for k in ("pswpin", "pswpout")},
    )


def _vram(result: dict[str, Any], torch: Any, device: str, watchdog: _Watchdog) -> None:
    if device == "cuda":
        result["peak_vram_bytes"] = int(torch.cuda.max_memory_reserved())
        result["peak_vram_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        result["nvml_peak_used_bytes"] = watchdog.peak_nvml


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the job, pin threads, measure, write the result."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text("utf-8"))
    threads = str(int(job["threads"]))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = threads
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = measure(job)
    except MemoryError:
        result = {"status": "out_of_memory", "detail": "MemoryError while measuring"}
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = "out_of_memory" if "out of memory" in text.lower() or "alloc" in text.lower() else "failed"
        detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {text}"
        result = {"status": status, "detail": detail}
    _write(job, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

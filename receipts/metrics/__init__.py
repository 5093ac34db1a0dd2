"""The metric definitions of DESIGN §4, as pure functions over per-item numbers, one module per family.

- `receipts.metrics.task`: accuracy, exact match, token F1, extraction P/R/F1, multiple choice.
- `receipts.metrics.calibration`: confidence, ECE, reliability bins, Brier, selective accuracy,
  abstention.
- `receipts.metrics.fidelity`: agreement with the teacher, its 2x2 cells, token and choice KL.
- `receipts.metrics.retention`: (S - B) / (T - B) and S / T, null with a reason.
- `receipts.metrics.uncertainty`: paired bootstrap CIs, small-n flags, McNemar.
- `receipts.metrics.diagnostics`: what the numbers suggest doing next.
- `receipts.metrics.latency`: bench latency statistics: nearest-rank percentiles, the median's bootstrap CI.
- `receipts.metrics.agreement`: a judge's verdict grammar, Cohen's kappa with its bootstrap CI (issue #20).

The release gate is `receipts.gate` (``receipts sign`` recomputes it). Nothing here imports torch,
reads files or keeps state; the runner hands these functions per-item arrays and records what they
return. Each docstring states the exact definition and the reference it is tested against in
``tests/receipts/test_metrics_*.py``.

Conventions: ``correct``/binary inputs are 0/1 or bools; probabilities lie in [0, 1]; an undefined
ratio is ``None`` (never NaN, never a numpy warning); empty or mismatched inputs raise ``ValueError``
(a caller bug, not user input).
"""

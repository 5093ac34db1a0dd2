"""Importers that turn other harnesses' task definitions into receipts eval packs (no torch here)."""

from runner.eval.importers.lm_eval import ImportedPack, import_lm_eval_task

__all__ = ["ImportedPack", "import_lm_eval_task"]

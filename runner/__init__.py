"""The runner: evaluates packs on teacher, base and student (issue #3).

Only here are torch and transformers imported, lazily, inside backends.
"""

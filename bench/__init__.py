"""Benchmarks: every hot path measured side by side with a baseline or peer.

Each ``bench/bench_*.py`` module exposes ``run(quick: bool) -> list[Entry]``.
``python -m bench`` runs them all and writes ``out/bench.json``.
"""

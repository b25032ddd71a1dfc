"""Experiments: the quality report against the peer engines, lexicon sweeps, the fine-tuning
table, training curves, conversion snapshots. Each runs from the repository root as a module,
`python -m experiments.NAME --help`; benchmarks/ holds the speed measurements."""

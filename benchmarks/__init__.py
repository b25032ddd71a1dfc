"""Speed benchmarks: train-step throughput, decoding and converter latency, pinyin parsing.
Each runs from the repository root as a module, `python -m benchmarks.NAME --help`; the results
and the commands that made them are in benchmarks/RESULTS.md, experiments/ holds the rest."""

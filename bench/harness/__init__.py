"""The benchmark harness bench.py runs: config, procs, measure and net are the tools, context
holds one run's state, stages/ has one module per stage."""

"""Benchmarks: scripts that measure two rates side by side in one run and print their ratio.

`make bench` (= `python -m bench.run_all`) prints every ratio; each module also runs alone, e.g.
`python -m bench.r1_case_detail`. Loopback only, bounded runtime; never part of the test suite.
"""

"""Helpers of scripts/compare.py: processes, measurement, reports, tools.

procs     servers as context managers, load tools, CPU time from /proc
measure   the one alternate-rounds-median loop, every raw figure recorded
report    Markdown tables to stdout and results.md, CSV and JSON of the raw figures
parse     what the load tools print (wrk, pingpong, redis-benchmark, oha, h2load)
tools     missing programs and packages, building the peers and examples
chart     docs/dispatch.svg
hold      a process that opens N connections and holds them idle (run as a script)
"""

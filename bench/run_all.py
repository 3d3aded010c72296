"""Run every benchmark and print one JSON line each (make bench). The figures and how they were
obtained are written down in docs/benchmarks.md. The week and heap benches take ~10 min each."""
import sys

from bench import core, reaction, week


def main():
    core.main()
    reaction.main([])
    week.main([])
    if "--heap" in sys.argv:
        from bench import heap
        heap.main([])


if __name__ == "__main__":
    main()
    sys.stdout.flush()


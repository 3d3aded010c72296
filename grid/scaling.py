"""python -m grid.scaling [HOMES ...]: run the study (no doc) at several sizes and record wall
time and work in docs/grid_scaling.json, for docs/grid.md's scaling section."""
import json
import sys

from grid import report, study


def main(argv=None):
    sizes = [int(x) for x in (argv if argv is not None else sys.argv[1:])] or [250, 500]
    try:
        with open(report.SCALING) as f:
            runs = json.load(f)
    except (OSError, ValueError):
        runs = []
    for n in sizes:
        _, meta = study.main(["--homes", str(n), "--no-doc"])
        runs = [r for r in runs if r["homes"] != meta["homes"] or r["days"] != meta["days"]]
        runs.append({k: meta[k] for k in ("homes", "feeders", "cars", "days", "workers",
                                          "wall_s", "cpu_s")})
        with open(report.SCALING, "w") as f:
            json.dump(sorted(runs, key=lambda r: r["homes"]), f, indent=1)


if __name__ == "__main__":
    main()

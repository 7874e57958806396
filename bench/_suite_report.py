"""Tables, summary and plots of bench/suite.py."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics

import numpy as np

# A chebpan run that reports success with an error this many times its rtol is listed.
_SUSPICIOUS = 1000.0


def metadata(threads, seconds, repeats, budget, solvers, quick) -> dict:
    import scipy

    import chebpan

    versions = {"chebpan": getattr(chebpan, "__version__", "?"), "numpy": np.__version__,
                "scipy": scipy.__version__}
    try:
        import sksundae

        versions["scikit-sundae"] = sksundae.__version__
    except ImportError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}; {os.cpu_count()} CPUs; Python "
                   f"{platform.python_version()}",
        "load": "%.2f %.2f %.2f" % os.getloadavg(),
        "versions": versions, "threads": threads, "seconds": seconds, "repeats": repeats,
        "budget": budget, "solvers": solvers, "quick": quick,
    }


def _ms(x):
    return f"{x * 1e3:.1f}" if x is not None else "—"


def rows(results):
    """One row per (problem, target): chebpan's best and the best other solver's."""
    out = []
    for name, res in results.items():
        for target in res["targets"]:
            cheb = res["solvers"]["chebpan"]["best"][target]
            others = [(s, d["best"][target]) for s, d in res["solvers"].items()
                      if s != "chebpan" and d["best"][target] is not None]
            best = min(others, key=lambda x: x[1][1]) if others else None
            ratio = cheb[1] / best[1][1] if cheb and best else None
            out.append({"problem": name, "stiff": res["problem"].stiff, "target": target,
                        "cheb": cheb, "best": best, "ratio": ratio})
    return out


def _summary(table, targets):
    lines = []
    ratios = [r["ratio"] for r in table if r["ratio"] is not None]
    if ratios:
        lines.append(f"- median chebpan / best time over {len(ratios)} problem-target "
                     f"pairs: **{statistics.median(ratios):.2f}** (geometric mean "
                     f"{float(np.exp(np.mean(np.log(ratios)))):.2f})")
    for t in targets:
        rt = [r["ratio"] for r in table if r["target"] == t and r["ratio"] is not None]
        if rt:
            lines.append(f"- target {t:g}: median {statistics.median(rt):.2f} over {len(rt)}; "
                         f"above 1: {sum(x > 1 for x in rt)}, above 2: {sum(x > 2 for x in rt)}, "
                         f"at most 1/3: {sum(x <= 1 / 3 for x in rt)}")
    worst, seen = [], set()
    for r in sorted((r for r in table if r["ratio"] is not None), key=lambda r: -r["ratio"]):
        if r["problem"] not in seen and len(worst) < 3:  # three different problems
            worst.append(r)
            seen.add(r["problem"])
    if worst:
        lines.append("- worst three: " + ", ".join(
            f"{r['problem']} at {r['target']:g} ({r['ratio']:.2f}, best: {r['best'][0]})"
            for r in worst))
    missed = [r for r in table if r["cheb"] is None and r["best"] is not None]
    if missed:
        lines.append("- **chebpan never reached the target, another solver did**: " + ", ".join(
            f"{r['problem']} at {r['target']:g}" for r in missed))
    nobody = [r for r in table if r["cheb"] is None and r["best"] is None]
    if nobody:
        lines.append("- no solver reached: " + ", ".join(
            f"{r['problem']} at {r['target']:g}" for r in nobody))
    only = [r for r in table if r["cheb"] is not None and r["best"] is None]
    if only:
        lines.append("- only chebpan reached: " + ", ".join(
            f"{r['problem']} at {r['target']:g}" for r in only))
    return lines


def _suspicious(results):
    out = []
    for name, res in results.items():
        for r in res["solvers"]["chebpan"]["runs"]:
            if r.status == 0 and r.error > _SUSPICIOUS * r.rtol:
                out.append(f"{name} rtol {r.rtol:g}: error {r.error:.2e} with status 0")
    return out


def markdown(results, skipped, solvers, targets, meta) -> str:
    table = rows(results)
    v = ", ".join(f"{k} {x}" for k, x in meta["versions"].items())
    th = ", ".join(f"{k}={x}" for k, x in meta["threads"].items())
    out = [
        "### Benchmark suite: chebpan time / best other solver's time",
        "",
        f"Date: {meta['date']}  ",
        f"Machine: {meta['machine']}; load average at the end {meta['load']}  ",
        f"Versions: {v}  ",
        f"Threads: {th}  ",
        f"Settings: {'quick mode; ' if meta['quick'] else ''}time = best of "
        f"{meta['repeats']} runs of the cheapest tolerance reaching the target; a solver "
        f"stops tightening after a run over {meta['budget']:g} s (twice that for n >= 100); "
        f"solvers: "
        f"{', '.join(solvers)}  ",
        f"Total time: {meta['seconds']:.0f} s",
        "",
        "| problem | target | chebpan [ms] | rtol | depth | npoints | nfev | best other | "
        "its time [ms] | chebpan / best |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in table:
        c, b = r["cheb"], r["best"]
        cheb_cols = (f"{_ms(c[1])} | {c[0].rtol:g} | {c[0].depth} | {c[0].npoints} | "
                     f"{c[0].nfev}" if c else "never | | | |")
        best_cols = f"{b[0]} | {_ms(b[1][1])}" if b else "none reached | —"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        out.append(f"| {r['problem']}{' (stiff)' if r['stiff'] else ''} | {r['target']:g} | "
                   f"{cheb_cols} | {best_cols} | {ratio} |")
    out += ["", "#### Summary", "", *_summary(table, targets)]
    sus = _suspicious(results)
    out += ["", "#### chebpan runs with status 0 and error above "
            f"{_SUSPICIOUS:g} × rtol", ""]
    out += [f"- {s}" for s in sus] if sus else ["none"]
    if skipped or any(res["unresolved"] for res in results.values()):
        out += ["", "#### Not measured", ""]
        out += [f"- {k}: {why}" for k, why in skipped.items()]
        out += [f"- {k} at {', '.join(f'{t:g}' for t in res['unresolved'])}: the reference "
                "cannot resolve it" for k, res in results.items() if res["unresolved"]]
    out += ["", "#### Every solver's time at each target [ms] (— : not reached)", "",
            "| problem | target | " + " | ".join(solvers) + " |",
            "|---|---:|" + "---:|" * len(solvers)]
    for name, res in results.items():
        for t in res["targets"]:
            cells = [_ms(res["solvers"][s]["best"][t][1]) if res["solvers"][s]["best"][t]
                     else "—" for s in solvers]
            out.append(f"| {name} | {t:g} | " + " | ".join(cells) + " |")
    costs = {k: res["cost"] for k, res in results.items() if res["cost"]}
    if costs:
        out += ["", "#### chebpan at rtol = atol = 1e-10 against 1e-3", "",
                "| problem | error 1e-3 | ms | depth | npoints | error 1e-10 | ms | depth | "
                "npoints | time ratio | depth ratio | npoints ratio |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        tr = []
        for k, c in costs.items():
            (a, ta), (b, tb) = c[1e-3], c[1e-10]
            ok = a.status == 0 and b.status == 0
            ratio = tb / ta if ok else None
            if ratio:
                tr.append(ratio)
            out.append(
                f"| {k} | {a.error:.1e} | {_ms(ta)} | {a.depth} | {a.npoints} | {b.error:.1e} | "
                f"{_ms(tb)} | {b.depth} | {b.npoints} | "
                + (f"{ratio:.1f} | {b.depth / max(a.depth, 1):.1f} | "
                   f"{b.npoints / max(a.npoints, 1):.1f} |" if ok else "failed | | |"))
        if tr:
            out += ["", f"Median time ratio (1e-10 / 1e-3): {statistics.median(tr):.1f}"]
    return "\n".join(out) + "\n"


def load_runs(path):
    """Runs stored by :func:`write_json`: ``{problem: {solver: [Run, ...]}}``."""
    from _suite_solvers import Run

    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: {s: [Run(**r) for r in runs] for s, runs in per.items()}
            for name, per in data.items()}


def write_json(results, path):
    data = {}
    for name, res in results.items():
        data[name] = {s: [{k: v for k, v in dataclasses.asdict(r).items() if k != "y"}
                          for r in d["runs"]] for s, d in res["solvers"].items()}
    path.write_text(json.dumps(data, indent=0, default=float), encoding="utf-8")


def plots(results, solvers, out):
    """Work-precision grids: error vs wall time, and error vs depth (others: fun calls)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = 6
    nrows = -(-len(names) // cols)
    # one fixed colour per solver across all panels
    colours = iter(plt.get_cmap("tab10").colors)
    styles = {s: dict(marker="o" if s == "chebpan" else ".", lw=2 if s == "chebpan" else 1,
                      color="k" if s == "chebpan" else next(colours)) for s in solvers}
    for key, label, fname in (("seconds", "wall time [s]", "suite_error_vs_time.png"),
                              ("depth", "depth (chebpan) / fun calls (others)",
                               "suite_error_vs_depth.png")):
        fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            for s in solvers:
                runs = [r for r in results[name]["solvers"][s]["runs"]
                        if r.status == 0 and np.isfinite(r.error)]
                if runs:
                    x = [max(getattr(r, key), 1e-6) for r in runs]
                    ax.loglog(x, [max(r.error, 1e-17) for r in runs], label=s, **styles[s])
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], **styles[s]) for s in solvers]
        fig.legend(handles, solvers, loc="lower right", ncol=4, fontsize=9)
        fig.supxlabel(label)
        fig.supylabel("scaled error at t_end")
        fig.tight_layout()
        fig.savefig(out / fname, dpi=80)
        plt.close(fig)


def references_table(suite) -> str:
    """Markdown table of the suite's problems and how their references were checked."""
    out = ["| problem | n | stiff | floor | t_end | reference | checked against | agreement "
           "| resolvable targets |", "|---|---:|---|---:|---:|---|---|---:|---|"]
    for name, factory in suite.items():
        p = factory()
        info = p.reference_info()
        res = ", ".join(f"{t:g}" for t in info["resolvable"]) or "none"
        out.append(f"| {name} | {p.n} | {'yes' if p.stiff else 'no'} | {p.floor:g} | "
                   f"{p.t_span[1]:g} | {info['method']} | {info['check']} | "
                   f"{info['agreement']:.1e} | {res} |")
    return "\n".join(out) + "\n"

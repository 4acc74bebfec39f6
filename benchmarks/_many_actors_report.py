"""The table and the PNG of benchmarks/many_actors.py, from its results (also `--replot LOG`)."""

from __future__ import annotations

import os
from pathlib import Path


def _f(value, width: int, digits: int = 1) -> str:
    if value is None:
        return "-".rjust(width)
    return f"{value:{width}.{digits}f}"


def _per_core(figures: dict) -> float:
    return figures["rounds_per_s"] / max(figures["learner_cores"], 1e-9)


def print_table(results: dict, args) -> None:
    print()
    rate = "flat out" if args.fps == 0 else f"at {args.fps:g} Hz each"
    print(f"One learner, N actors {rate} ({args.episode_steps}-step episodes), "
          f"{args.seconds:g} s windows, "
          f"{os.cpu_count()} cores shared by the learner and all actor processes")
    head = (f"{'transport':<10}{'actors':>7}{'offered/s':>10}{'ingest/s':>10}{'rounds/s':>9}"
            f"{'rounds/':>8}{'pushes':>7}{'p50 ms':>8}{'p95 ms':>8}{'RSS MB':>8}{'RSS MB':>8}"
            f"{'learner':>8}{'actors':>7}{'others':>7}{'late %':>7}")
    print(head)
    print(f"{'':<10}{'':>7}{'':>10}{'':>10}{'':>9}{'core s':>8}{'/actor':>7}{'':>8}{'':>8}"
          f"{'learner':>8}{'/actor':>8}{'cores':>8}{'cores':>7}{'cores':>7}{'ticks':>7}")
    print("-" * len(head))
    for kind, result in results.items():
        alone = result["alone"]
        print(f"{kind:<10}{0:>7}{'-':>10}{'-':>10}{alone['rounds_per_s']:9.1f}"
              f"{_per_core(alone):8.1f}{'-':>7}{'-':>8}"
              f"{'-':>8}{alone['learner_rss_mb']:8.0f}{'-':>8}{alone['learner_cores']:8.2f}"
              f"{alone['actor_cores']:7.2f}{alone['other_cores']:7.2f}{'-':>7}")
        for p in result["points"]:
            late = None if p["late_tick_fraction"] is None else 100 * p["late_tick_fraction"]
            print(f"{kind:<10}{p['actors']:>7}{p['offered_transitions_per_s']:10.1f}"
                  f"{p['ingested_transitions_per_s']:10.1f}{p['rounds_per_s']:9.1f}"
                  f"{_per_core(p):8.1f}"
                  f"{p['pushes_per_actor_mean']:7.1f}{_f(p['latency_ms_p50'], 8)}"
                  f"{_f(p['latency_ms_p95'], 8)}{p['learner_rss_mb']:8.0f}"
                  f"{p['actor_rss_mb_mean']:8.0f}"
                  f"{p['learner_cores']:8.2f}{p['actor_cores']:7.2f}{p['other_cores']:7.2f}"
                  f"{_f(late, 7)}")
    print("offered = transitions the actors sent in the window; ingest = inserted into the "
          "replay buffer in it;")
    print("rounds/s = UTD rounds (utd_ratio 2) the learner ran meanwhile (row 0: no actor); "
          "rounds/core s = the same per")
    print("second of CPU the learner process got (what other processes leave it varies); "
          "pushes = parameter versions")
    print("each actor received and decoded; p50/p95 = send_transitions -> inserted; late = "
          "control ticks missed by > 1 period.")
    for kind, result in results.items():
        for p in result["points"]:
            problems = {k: p[k] for k in ("sent_in_window_not_ingested", "dropped_full_queue",
                                          "unflushed_actors", "rejected_payloads") if p[k]}
            if problems:
                print(f"NOTE {kind}, {p['actors']} actors: {problems}")


def plot(results: dict, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    figure, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    colours = {"grpc": "tab:blue", "zmq": "tab:orange"}
    counts = sorted({p["actors"] for r in results.values() for p in r["points"]})
    for kind, result in results.items():
        points = result["points"]
        actors = [p["actors"] for p in points]
        colour = colours.get(kind)
        axes[0].plot(actors, [p["rounds_per_s"] for p in points], "o-", color=colour, label=kind)
        axes[0].axhline(result["alone"]["rounds_per_s"], color=colour, linestyle=":",
                        linewidth=1, label=f"{kind}, no actor")
        axes[1].plot(actors, [p["ingested_transitions_per_s"] for p in points], "o-",
                     color=colour, label=f"{kind} ingested")
        axes[1].plot(actors, [p["offered_transitions_per_s"] for p in points], "x--",
                     color=colour, alpha=0.6, label=f"{kind} offered")
        axes[2].plot(actors, [p["latency_ms_p50"] for p in points], "o-", color=colour,
                     label=f"{kind} p50")
        axes[2].plot(actors, [p["latency_ms_p95"] for p in points], "x--", color=colour,
                     alpha=0.6, label=f"{kind} p95")
        for key, style, name in (("learner_cores", "o-", "learner"),
                                 ("actor_cores", "x--", "all actors"),
                                 ("other_cores", "s:", "other processes")):
            axes[3].plot(actors, [p[key] for p in points], style, color=colour,
                         alpha=1.0 if name == "learner" else 0.6, label=f"{kind} {name}")
    titles = ("UTD rounds/s of the learner", "transitions/s into the replay buffer",
              "send -> inserted latency (ms)", "CPU cores used during the window")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_xscale("log", base=2)
        axis.set_xticks(counts)
        axis.get_xaxis().set_major_formatter(ScalarFormatter())
        axis.get_xaxis().set_minor_formatter(NullFormatter())
        axis.set_xlabel("actor processes")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    axes[0].set_ylim(bottom=0)
    axes[3].set_ylim(0, os.cpu_count() or 2)
    def positive(*keys) -> bool:  # a log axis needs something above 0 (short windows may not)
        return any((p[key] or 0) > 0 for r in results.values() for p in r["points"] for key in keys)

    if args.fps > 0 and positive("ingested_transitions_per_s", "offered_transitions_per_s"):
        axes[1].set_yscale("log")
    else:
        axes[1].set_ylim(bottom=0)
    if positive("latency_ms_p50", "latency_ms_p95"):
        axes[2].set_yscale("log")
    for axis in (axes[1], axes[2]):
        if axis.get_yscale() == "log":
            axis.get_yaxis().set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.get_yaxis().set_major_formatter(ScalarFormatter())
        axis.get_yaxis().set_minor_formatter(NullFormatter())
    rate = "flat out" if args.fps == 0 else f"{args.fps:g} Hz each"
    figure.suptitle(f"One hiljax learner (state SAC, CPU) and N actor processes at {rate}, "
                    f"{args.episode_steps}-step episodes; {os.cpu_count()} cores shared by "
                    "every process on the machine")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)

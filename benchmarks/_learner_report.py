"""Printing of the learner benchmark's results (tables, breakdown, notes)."""

from __future__ import annotations

import os
import platform

import jax

# ---------------------------------------------------------------------------------------------
# Reporting.


def _fmt(x, width: int, digits: int = 2) -> str:
    if x is None:
        return "-".rjust(width)
    if isinstance(x, bool):
        return ("yes" if x else "no").rjust(width)
    if isinstance(x, (int, float)):
        return f"{x:{width}.{digits}f}" if x < 1000 else f"{x:{width}.0f}"
    return str(x).rjust(width)


def print_report(results: dict) -> None:
    ok = {n: r for n, r in results.items() if "error" not in r}
    print()
    device = next((r["device"] for r in ok.values() if "device" in r), jax.default_backend())
    print(f"hiljax learner throughput - JAX {jax.__version__} on {device}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print("steps/s = UTD rounds/s (utd_ratio 2); loop = hiljax's learner loop (prefetch, donated "
          "rounds, host buffer); dev-buf = the same sampling from the buffer's device copy;")
    print("speed-up (loop / LeRobot) and goal use the loop; %peak = update-only GFLOP/s / "
          "measured f32 1024^3 matmul GFLOP/s; %layer = the same / GFLOP/s of one matmul of the "
          "round's layer shape (batch x 256 x 256)")
    head = (f"{'config':<10}{'batch':>6}{'compile s':>10}{'upd-only':>10}{'smp+upd':>10}"
            f"{'loop':>9}{'dev-buf':>9}{'LeRobot':>9}{'speed-up':>9}{'goal':>7}{'met':>5}"
            f"{'%peak':>7}{'%layer':>7}{'peak RSS MB':>12}")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<10} FAILED: {r['error']}")
            continue
        device_loop = r.get("learner_loop_device_buffer", {}).get("steps_per_s")
        print(f"{name:<10}{r['batch_size']:>6}{_fmt(r['compile_s'], 10, 1)}"
              f"{_fmt(r['update_only']['steps_per_s'], 10)}"
              f"{_fmt(r['sample_update']['steps_per_s'], 10)}"
              f"{_fmt(r['learner_loop']['steps_per_s'], 9)}{_fmt(device_loop, 9)}"
              f"{_fmt(r.get('reference_steps_per_s'), 9, 3)}{_fmt(r.get('speedup'), 8)}x"
              f"{_fmt(r['goal_steps_per_s'], 7, 0)}{_fmt(r['goal_met'], 5)}"
              f"{_fmt(100 * r['peak_fraction'], 7, 0)}"
              f"{_fmt(100 * r['layer_matmul_fraction'], 7, 0)}{_fmt(r['peak_rss_mb'], 12, 0)}")
    for name, r in ok.items():
        print(f"{name:<10} LeRobot figure: {r.get('reference_source', '-')}")
    print_breakdown(ok)
    print_features(ok)
    print_notes(ok)


def _piece_gflops(piece: dict) -> float | None:
    return piece["gflop"] / (piece["ms"] / 1e3) if piece.get("gflop") else None


def print_breakdown(results: dict) -> None:
    print()
    print("Where the time goes: one round vs its pieces, jitted separately on the same device "
          "batch and timed together (ms, median)")
    head = (f"{'config':<10}{'round':>9}{'sample':>8}{'prepare':>9}{'(augm.)':>9}{'critic':>8}"
            f"{'x K':>4}{'policy':>8}{'sum':>9}{'GFLOP':>8}{'XLA GF':>8}{'GFLOP/s':>8}"
            f"{'prep':>6}{'crit':>6}{'matmul':>7}{'others':>7}")
    print(head + "\n" + "-" * len(head))
    for name, r in results.items():
        b = r.get("breakdown", {})
        if "error" in b:
            print(f"{name:<10}  breakdown failed: {b['error']}")
            continue
        augment = b.get("augmentation", {}).get("ms")
        print(f"{name:<10}{b['round']['ms']:9.1f}{r['sample_ms']:8.1f}"
              f"{b['prepare_images']['ms']:9.1f}{_fmt(augment, 9, 1)}"
              f"{b['critic_step']['ms']:8.1f}{b['critic_steps_per_round']:>4}"
              f"{b['policy_step']['ms']:8.1f}{b['sum_ms']:9.1f}{b['sum_gflop']:8.1f}"
              f"{r['xla_round']['gflop']:8.1f}{r['achieved_gflops']:8.1f}"
              f"{_fmt(_piece_gflops(b['prepare_images']), 6, 0)}"
              f"{_fmt(_piece_gflops(b['critic_step']), 6, 0)}"
              f"{r['machine_matmul_gflops']:7.0f}{r['other_cpu_cores']:7.2f}")
    print("round = one agent.update on the device batch; sample = host ReplayBuffer.sample for "
          "one round; prepare = augmentation + frozen")
    print("backbone (augm. = the augmentation alone); critic = critic + discrete critic + "
          "Polyak, K per round; policy = actor + temperature;")
    print("GFLOP = the pieces' XLA counts summed per round; XLA = the compiled round's own count "
          "(it counts the scan body once); GFLOP/s =")
    print("GFLOP x update-only steps/s; prep, crit = GFLOP/s of those pieces; matmul = f32 "
          "1024^2 matmul GFLOP/s measured at the start;")
    print("others = cores busy with OTHER processes during the config's run (the machine is "
          "shared; > 0.2 means the figures are depressed).")


def print_features(results: dict) -> None:
    cached = {n: r for n, r in results.items() if "feature_extraction" in r}
    if not cached:
        return
    print()
    print("Feature cache: backbone_features cost, paid once per stored frame at insert time")
    for name, r in cached.items():
        fe = r["feature_extraction"]
        per_round = r["utd_ratio"] * r["batch_size"] * 2 * 2  # obs + next obs, two cameras
        print(f"{name:<10} per step ({fe['per_step']['frames_per_call']} frames): "
              f"{fe['per_step']['ms_per_call']:7.1f} ms = {fe['per_step']['frames_per_s']:6.1f} "
              f"frames/s | batched ({fe['batched']['frames_per_call']} frames): "
              f"{fe['batched']['frames_per_s']:6.1f} frames/s | the pixel learner recomputes "
              f"{per_round} frames per round")


def print_notes(results: dict) -> None:
    print()
    for name, r in results.items():
        buf = r["buffer"]
        print(f"{name:<10} buffer {buf['bytes_per_transition']:9.0f} B/transition "
              f"(obs+next stored separately: {buf['naive_bytes_per_transition']}), "
              f"{buf['mb']:7.1f} MB at capacity {buf['capacity']}; RSS after fill "
              f"{r['rss_after_fill_mb']:6.0f} MB; windows (steps/s) upd-only "
              f"{[round(x, 3) for x in r['update_only']['windows_steps_per_s']]}, smp+upd "
              f"{[round(x, 3) for x in r['sample_update']['windows_steps_per_s']]}; other "
              f"processes' cores while timing {r['update_only']['other_cpu_cores']:.2f} / "
              f"{r['sample_update']['other_cpu_cores']:.2f}"
              + ("" if r["metrics_finite"] else "; NON-FINITE METRICS")
              + (f"; {r['recompiles_during_timing']} RECOMPILES while timing"
                 if r["recompiles_during_timing"] else ""))

"""Time-to-induction of the default training run on this machine, against the previous recipe
measured in the same run.

    python benchmarks/time_to_induction.py [--seeds 0 1 2] [--steps N] [--threads T] [--load N]
                                           [--baseline recipe | REV | --no-baseline]

For each seed the default recipe (``TrainConfig(seed=s)``, ``ModelConfig()``) trains once, and
once the baseline, alternating, each in a fresh process. The baseline is the previous recipe
(``PREVIOUS_RECIPE``: LayerNorm, 2,000 steps): with ``--baseline recipe`` (the default) on this
checkout's code, with ``--baseline REV`` on the files of issue 15 as they were at a git revision
(``benchmarks/baseline_tree.py``; ``e3f21a3`` is the code before issue 15). Printed per run and
as medians: wall-clock seconds and training tokens until the induction criterion first holds
(best layer-1 prefix-matching >= 0.5, best layer-0 previous-token >= 0.5, loss on later repeats
< half the first copy's) at the checkpoints and, for code that records them, at its light records
every ``probe_every`` steps; the share of natural text; the whole run's seconds and CPU-seconds
(the process's, imports included); the share of the run spent evaluating; the final scores; and
the ratios baseline / current. ``--threads`` fixes torch's threads for both (default: each
implementation's own choice); ``--load N`` runs N busy-looping processes beside (stopped by pid
afterwards). Speed targets live here, never in unit tests. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import baseline_tree

ROOT = baseline_tree.ROOT
TARGET_S = 20.0
# The shipped run before issue 15 changed the recipe: LayerNorm, 2,000 steps (README, "Training recipe").
PREVIOUS_RECIPE = {"normalization": "LN", "steps": 2000}

# Runs inside the child process, against whichever package PYTHONPATH points at.
DRIVER = r"""
import inspect, json, sys, tempfile, time
import torch
threads, seed, steps, recipe = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
from induction_course.data import load_corpus
from induction_course.evaluation import induction_formed
from induction_course.model import ModelConfig
from induction_course.training import TrainConfig, train
corpus = load_corpus()
tcfg = TrainConfig(seed=seed)
mcfg = ModelConfig(d_vocab=corpus.d_vocab)
if recipe:
    tcfg.steps = recipe["steps"]
    mcfg.normalization = recipe["normalization"]
if steps:
    tcfg.steps = steps
kwargs = {"threads": 0} if threads and "threads" in inspect.signature(train).parameters else {}
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    result = train(tcfg, mcfg, out_dir=tmp, progress=False, corpus=corpus, **kwargs)
    wall = time.perf_counter() - start
    summary = json.loads(open(tmp + "/summary.json").read())
def first(records):
    r = next((h for h in sorted(records, key=lambda h: h["step"]) if induction_formed(h)), None)
    return None if r is None else {k: r[k] for k in ("step", "seconds", "tokens", "natural_tokens")}
last = result.history[-1]
print("RESULT " + json.dumps({
    "wall": wall, "eval_seconds": summary["eval_seconds"], "tokens": summary["tokens"],
    "natural_tokens": summary["natural_tokens"], "threads": summary.get("threads", torch.get_num_threads()),
    "formed_checkpoint": first(result.history),
    "has_probes": hasattr(result, "probes"),
    "formed_probe": first(result.history + result.probes) if hasattr(result, "probes") else None,
    "final": {k: last[k] for k in ("best_prev_token_layer0", "best_prefix_matching_layer1",
                                   "loss_first_repeat", "loss_later_repeats", "icl_score")},
}))
"""


def run_once(src: Path, seed: int, steps: int, threads: int, recipe: dict | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(threads), str(seed), str(steps), json.dumps(recipe)],
                          env=env, cwd=src.parent, capture_output=True, text=True)
    process_wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"training failed ({src}, seed {seed}):\n{proc.stderr[-3000:]}")
    out = json.loads(line[len("RESULT "):])
    out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out["process_wall"] = process_wall
    return out


def fmt_formed(f: dict | None, has: bool = True) -> str:
    if not has:
        return "none recorded"
    if f is None:
        return "not reached"
    return f"{f['seconds']:5.1f} s, step {f['step']:4d}, {f['tokens'] / 1e6:.2f} M tokens ({f['natural_tokens'] / max(f['tokens'], 1):.0%} natural)"


def median_or_nan(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=0, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads for both (default: each one's own choice)")
    ap.add_argument("--load", type=int, default=0, help="busy processes beside the runs")
    ap.add_argument("--baseline", default="recipe",
                    help="'recipe': the previous recipe on this code (default); or a git revision whose code runs it")
    ap.add_argument("--no-baseline", action="store_true", help="time the current code only")
    args = ap.parse_args(argv)

    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        with tempfile.TemporaryDirectory(prefix="tti-") as tmp:
            impls = [("current", ROOT / "src", None)]
            if not args.no_baseline:
                src = ROOT / "src" if args.baseline == "recipe" else baseline_tree.build(Path(tmp) / "baseline", args.baseline)
                impls.append(("baseline", src, PREVIOUS_RECIPE))
            print(f"{os.cpu_count()} CPUs, {args.load} busy process(es) beside, threads: "
                  f"{args.threads or 'each implementation chooses'}; seeds {args.seeds}; baseline "
                  f"{'none' if args.no_baseline else f'the previous recipe {PREVIOUS_RECIPE} on code {args.baseline}'}; target: induction in under {TARGET_S:.0f} s (median)")
            runs: dict[str, list[dict]] = {name: [] for name, _, _ in impls}
            for seed in args.seeds:
                for name, src, recipe in impls:
                    r = run_once(src, seed, args.steps, args.threads, recipe)
                    runs[name].append(r)
                    fin = r["final"]
                    print(f"{name:<9} seed {seed}: induction at checkpoints {fmt_formed(r['formed_checkpoint'])}; "
                          f"light records {fmt_formed(r['formed_probe'], r['has_probes'])}\n"
                          f"{'':<17}whole run {r['wall']:.1f} s ({r['threads']} thread(s)), {r['cpu']:.1f} CPU-s "
                          f"(process {r['process_wall']:.1f} s), evaluation {r['eval_seconds'] / r['wall']:.0%}, "
                          f"{r['natural_tokens'] / r['tokens']:.0%} natural; final prev-token "
                          f"{fin['best_prev_token_layer0']:.2f}, prefix-matching {fin['best_prefix_matching_layer1']:.2f}, "
                          f"repeats {fin['loss_first_repeat']:.2f} -> {fin['loss_later_repeats']:.2f}, ICL {fin['icl_score']:+.2f}",
                          flush=True)
    finally:
        for p in load:
            p.kill()
        for p in load:
            p.wait()

    def med(name, key, sub=None):
        return median_or_nan([(r[key] or {}).get(sub) if sub else r[key] for r in runs[name]])

    print("\nmedians over seeds")
    rows = [("time to induction, checkpoints (s)", "formed_checkpoint", "seconds"),
            ("time to induction, light records (s)", "formed_probe", "seconds"),
            ("tokens to induction, checkpoints", "formed_checkpoint", "tokens"),
            ("whole run (s)", "wall", None), ("CPU-seconds", "cpu", None), ("evaluation (s)", "eval_seconds", None)]
    for label, key, sub in rows:
        cells = [f"{name} {med(name, key, sub):,.1f}" for name in runs]
        ratio = ""
        if "baseline" in runs and (key != "formed_probe" or all(r["has_probes"] for r in runs["baseline"])):
            ratio = f"  ratio baseline/current {med('baseline', key, sub) / med('current', key, sub):.2f}"
        print(f"  {label:<38}" + "   ".join(cells) + ratio)
    best = med("current", "formed_probe", "seconds")
    print(f"target: induction in under {TARGET_S:.0f} s (median): {'met' if best < TARGET_S else 'not met'} ({best:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

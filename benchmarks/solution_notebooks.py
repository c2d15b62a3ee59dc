"""Every solution notebook, top to bottom, on the CPU and on the GPU, in one run (not a test).

Each notebook of ``solutions/`` runs in its own process as a plain script (its code cells in order,
one namespace, matplotlib's Agg backend, progress bars off) with ``LABSUPPORT_DEVICE`` set, so the
experiments train on that device while the checks stay on the CPU in float64. Prints, per notebook,
the seconds on each device, their ratio, the lab's CPU budget from the manifest (``Lab.cpu_budget_s``,
marked ``over`` when the CPU run exceeds it) and the first cell that raised, if any:

    python benchmarks/solution_notebooks.py                      # cpu, and cuda when there is one
    python benchmarks/solution_notebooks.py --devices cpu --labs lab03 lab06

A failing cell is a finding on that machine (another CPU draws other dropout masks, another
library version computes differently), so the table says which cell and why instead of stopping.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One notebook on one device: wall seconds and the first failing cell (None: all ran)."""

    seconds: float
    failure: str | None


def code_cells(notebook: Path) -> list[str]:
    """The sources of the notebook's code cells, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def execute(notebook: Path) -> None:
    """Run the notebook's code cells in this process; print one JSON line with the outcome."""
    os.chdir(notebook.parent)
    sys.path.insert(0, str(ROOT))
    namespace: dict = {"__name__": "__main__"}
    t0 = time.perf_counter()
    failure = None
    for i, source in enumerate(code_cells(notebook)):
        try:
            exec(compile(source, f"{notebook.name} cell {i}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 — reported, not raised: the table goes on
            frame = traceback.extract_tb(e.__traceback__)[-1]
            failure = f"cell {i}: {type(e).__name__}: {str(e).splitlines()[0][:160]} ({frame.name}:{frame.lineno})"
            break
    print(json.dumps({"seconds": time.perf_counter() - t0, "failure": failure}))


def run(notebook: Path, device: str) -> Run:
    """The notebook in a fresh interpreter with ``LABSUPPORT_DEVICE=device``."""
    env = {**os.environ, "LABSUPPORT_DEVICE": device, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, __file__, "--execute", str(notebook)], env=env,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return Run(float("nan"), f"the process ended with code {proc.returncode}: {proc.stderr[-300:]}")
    return Run(**json.loads(lines[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda if available")
    parser.add_argument("--labs", nargs="+", default=None, help="lab ids or prefixes (default: all)")
    parser.add_argument("--execute", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.execute:
        execute(args.execute)
        return
    import torch

    from autograder.course import LABS

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    labs = [lab for lab in LABS if not args.labs or any(lab.id.startswith(name) for name in args.labs)]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"{'notebook':<32}" + "".join(f"{d + ' s':>10}" for d in devices)
          + (f"{devices[0] + '/' + devices[-1]:>12}" if len(devices) > 1 else "") + f"{'budget s':>10}")
    failures = []
    for lab in labs:
        runs = [run(lab.source_notebook, d) for d in devices]
        ratio = f"{runs[0].seconds / runs[-1].seconds:>11.1f}×" if len(runs) > 1 else ""
        over = "  over" if "cpu" in devices and runs[devices.index("cpu")].seconds > lab.cpu_budget_s else ""
        print(f"{lab.id:<32}" + "".join(f"{r.seconds:>10.1f}" for r in runs) + ratio
              + f"{lab.cpu_budget_s:>10}" + over, flush=True)
        failures += [f"{lab.id} on {d}: {r.failure}" for d, r in zip(devices, runs) if r.failure]
    print("\n".join(["", "failures:", *failures]) if failures else "\nevery notebook ran on every device")


if __name__ == "__main__":
    main()

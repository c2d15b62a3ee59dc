"""Run notebook cells in a Jupyter kernel, one by one, surviving crashes and hangs.

Each cell has a wall-clock timeout. When a cell hangs (even one that ignores interrupts) or kills
its kernel (``os._exit``, a segfault, running out of memory), the kernel is killed and a fresh one
started; the setup cells and the answer cells that ran cleanly are replayed into it, and execution
continues with the next cell. So a bad part costs only that part.

Stream output of a cell is capped in bytes so that a print loop cannot exhaust the grader's memory.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

MAX_OUTPUT_BYTES = 64 * 1024


@dataclass
class CellOutcome:
    """What happened to one cell: ``ok``, ``error`` (it raised), ``timeout`` or ``crashed``."""

    status: str
    ename: str = ""
    evalue: str = ""


class _CappedClient(NotebookClient):
    """A NotebookClient that stops storing a cell's output past ``MAX_OUTPUT_BYTES``."""

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> NotebookNode | None:
        size = sum(len(str(o.get("text", ""))) + len(str(o.get("data", ""))) for o in outs)
        if size > MAX_OUTPUT_BYTES:
            if not any(o.get("name") == "truncated" for o in outs):
                outs.append(NotebookNode(output_type="stream", name="truncated",
                                         text=f"\n[output truncated at {MAX_OUTPUT_BYTES // 1024} kB]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


def kernel_env(threads: int = 1) -> dict[str, str]:
    """Environment for grading kernels: few threads (parallel graders share cores), no GUI."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MPLBACKEND="Agg",
               PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def run_cells(nb: NotebookNode, order: Iterable[int], *, cwd: Path, timeout_for: Callable[[int], int],
              replay: Callable[[int], bool], kernel_name: str = "python3", threads: int = 1,
              startup_timeout: int = 60) -> dict[int, CellOutcome]:
    """Execute the cells ``order`` of ``nb`` in place; return each cell's outcome.

    ``timeout_for(i)`` gives cell i's timeout in seconds. ``replay(i)`` says whether cell i, having
    run cleanly, must be re-run after a kernel restart (setup and answer cells).
    """
    pending = list(order)
    outcomes: dict[int, CellOutcome] = {}
    while pending:
        client = _CappedClient(nb, kernel_name=kernel_name, timeout=None, startup_timeout=startup_timeout,
                               allow_errors=False, interrupt_on_timeout=False, shutdown_kernel="immediate",
                               record_timing=False, store_widget_state=False,
                               resources={"metadata": {"path": str(cwd)}})
        with client.setup_kernel(env=kernel_env(threads), stderr=subprocess.DEVNULL):
            for i in [i for i, o in outcomes.items() if o.status == "ok" and replay(i)]:
                _execute(client, nb, i, timeout_for(i), keep_outputs=False)
            while pending:
                i = pending.pop(0)
                outcomes[i] = _execute(client, nb, i, timeout_for(i), keep_outputs=True)
                if outcomes[i].status in ("timeout", "crashed"):
                    break  # leave the `with`: the kernel is killed, a fresh one replays and continues
    return outcomes


def _execute(client: NotebookClient, nb: NotebookNode, i: int, timeout: int, keep_outputs: bool
             ) -> CellOutcome:
    cell = nb.cells[i]
    saved = list(cell.get("outputs", []))
    client.timeout = timeout
    try:
        client.execute_cell(cell, i, store_history=True)
        outcome = CellOutcome("ok")
    except CellTimeoutError:
        outcome = CellOutcome("timeout", "Timeout", f"the cell ran longer than {timeout} s")
    except DeadKernelError:
        outcome = CellOutcome("crashed", "KernelDied", "the Python process stopped (os._exit, "
                              "sys.exit in a thread, a segfault, or out of memory)")
    except CellExecutionError as e:
        outcome = CellOutcome("error", e.ename, e.evalue)
    if not keep_outputs:
        cell.outputs = saved
    return outcome

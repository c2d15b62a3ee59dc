"""Flag suspicious code in answer cells for an instructor's review (never for automatic zeroes).

The sandbox already stops these from changing a verdict; flags say who tried, so a person can
look. Each flag names the answer cell, the line and why it is unusual in a lab answer. Besides the
generic ones below, a lab's answers are flagged when they import what the lab asks the student to
build: its ``blocked_modules`` in the manifest (:mod:`autograder.course`), i.e. the course's
reference modules and the oracle libraries.

>>> scan("mha", "from labsupport.multihead import MultiHeadAttention", ("labsupport.multihead",))
["mha, line 1: imports labsupport.multihead (uses the course's reference implementation)"]
"""

from __future__ import annotations

import ast

MODULES = {
    "ctypes": "loads native code", "socket": "opens network connections", "subprocess": "starts programs",
    "multiprocessing": "starts processes", "threading": "starts threads", "signal": "handles signals",
    "sqlite3": "opens databases", "builtins": "changes Python's built-ins", "importlib": "imports dynamically",
    "shutil": "copies or deletes files", "pickle": "loads pickled objects", "inspect": "inspects the caller",
    "gc": "walks the interpreter's objects", "IPython": "reaches into IPython",
    "labsupport.checks": "uses the checking helpers", "autograder": "imports the grader",
}
REFERENCE = "uses the course's reference implementation"
ORACLE = "uses the oracle library"
CALLS = {
    "get_ipython": "reaches into IPython (input transformers, hooks)", "exec": "executes generated code",
    "eval": "evaluates generated code", "__import__": "imports dynamically", "open": "opens files",
    "globals": "edits global variables", "setattr": "changes attributes dynamically",
}
ATTRS = {
    "_exit": "kills the process", "exit": "exits the process", "fork": "forks the process", "system": "runs a shell",
    "popen": "runs a shell", "kill": "sends signals", "modules": "edits sys.modules",
    "input_transformers_cleanup": "rewrites later cells", "input_transformers_post": "rewrites later cells",
    "__torch_function__": "overrides torch functions", "settrace": "traces execution", "setprofile": "traces execution",
}
DUNDERS = {"__eq__", "__ne__", "__bool__", "__hash__", "__torch_function__", "__instancecheck__", "__getattribute__"}


def scan(cell_id: str, code: str, blocked: tuple[str, ...] = ()) -> list[str]:
    """Human-readable flags for one answer cell's code; ``blocked``: the lab's blocked modules."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    flags: list[str] = []

    def flag(node: ast.AST, why: str) -> None:
        flags.append(f"{cell_id}, line {getattr(node, 'lineno', '?')}: {why}")

    modules = {**MODULES, **{m: REFERENCE if m.startswith("labsupport.") else ORACLE for m in blocked}}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.Import):
                groups = [[a.name] for a in node.names]
            else:  # from labsupport import multihead: the module, else a name of it that is a submodule
                groups = [[node.module or "", *(f"{node.module}.{a.name}" for a in node.names if node.module)]]
            for names in groups:
                hit = next(((n, why) for n in names for mod, why in modules.items()
                            if n == mod or n.startswith(mod + ".")), None)
                if hit:
                    flag(node, f"imports {hit[0]} ({hit[1]})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALLS:
            flag(node, f"calls {node.func.id}() ({CALLS[node.func.id]})")
        elif isinstance(node, ast.Attribute) and node.attr in ATTRS:
            flag(node, f"uses .{node.attr} ({ATTRS[node.attr]})")
        elif isinstance(node, ast.FunctionDef) and node.name in DUNDERS:
            flag(node, f"defines {node.name} (overrides comparisons or type checks)")
    return flags

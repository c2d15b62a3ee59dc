"""Flag suspicious code in answer cells for an instructor's review (never for automatic zeroes).

The sandbox already stops these from changing a verdict; flags say who tried, so a person can
look. Each flag names the answer cell, the line and why it is unusual in a lab answer.
"""

from __future__ import annotations

import ast

MODULES = {
    "ctypes": "loads native code", "socket": "opens network connections", "subprocess": "starts programs",
    "multiprocessing": "starts processes", "threading": "starts threads", "signal": "handles signals",
    "sqlite3": "opens databases", "builtins": "changes Python's built-ins", "importlib": "imports dynamically",
    "shutil": "copies or deletes files", "pickle": "loads pickled objects", "inspect": "inspects the caller",
    "gc": "walks the interpreter's objects", "IPython": "reaches into IPython", "tokenizers": "uses the oracle library",
    "transformers": "uses the oracle library", "labsupport.tokenizers": "uses the course's reference implementation",
    "labsupport.checks": "uses the checking helpers", "autograder": "imports the grader",
}
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


def scan(cell_id: str, code: str) -> list[str]:
    """Human-readable flags for one answer cell's code."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    flags: list[str] = []

    def flag(node: ast.AST, why: str) -> None:
        flags.append(f"{cell_id}, line {getattr(node, 'lineno', '?')}: {why}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                for mod, why in MODULES.items():
                    if name == mod or name.startswith(mod + "."):
                        flag(node, f"imports {name} ({why})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALLS:
            flag(node, f"calls {node.func.id}() ({CALLS[node.func.id]})")
        elif isinstance(node, ast.Attribute) and node.attr in ATTRS:
            flag(node, f"uses .{node.attr} ({ATTRS[node.attr]})")
        elif isinstance(node, ast.FunctionDef) and node.name in DUNDERS:
            flag(node, f"defines {node.name} (overrides comparisons or type checks)")
    return flags

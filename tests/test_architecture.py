"""The package's shape is checked, not hoped for: layers import downward only (import-linter
contracts in pyproject.toml), and an import inside a function is never a way around a circle,
only a way to keep a heavy optional runtime off the import path, said in a `# lazy:` comment."""
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ssdmobile"


def test_import_contracts_hold():
    proc = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                                                 "lint_imports_command()", "--no-cache"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout and "4 kept" in proc.stdout


def _why(lines: list[str], i: int) -> str:
    """The `# lazy: ...` comment on an import's line or on the block of imports and comments right
    above it (one comment may explain two imports of the same runtime)."""
    while i >= 0:
        line = lines[i].strip()
        if "# lazy:" in line:
            return line.split("#", 1)[1].strip()
        if i == 0 or not lines[i - 1].strip().startswith(("from ", "import ", "#")):
            return ""
        i -= 1
    return ""


def function_level_imports():
    """(file, line, imported module, the comment explaining it) for every import inside a function."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    module = ("." * node.level + (node.module or "")) if isinstance(node, ast.ImportFrom) \
                        else node.names[0].name
                    found.append((path.relative_to(REPO), node.lineno, module, _why(lines, node.lineno - 1)))
    return found


def test_no_function_level_import_of_the_package_itself():
    # only the CLI imports package modules late: it discovers the command modules while building its
    # parser, inside its Ctrl-C guard (they import the whole library)
    own = [f"{f}:{n} imports {m}" for f, n, m, _ in function_level_imports()
           if m.startswith((".", "ssdmobile")) and f.as_posix() != "ssdmobile/cli.py"]
    assert own == []


def test_every_lazy_import_says_why():
    silent = [f"{f}:{n} imports {m}" for f, n, m, why in function_level_imports() if not why.startswith("lazy:")]
    assert silent == [], "add a `# lazy: <why>` comment (a heavy optional runtime, not a cycle):\n" + "\n".join(silent)

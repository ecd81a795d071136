"""The .pyi stubs of the compiled modules: every public name has a declaration,
and mypy --strict accepts them."""
import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fastseg"
COMPILED = sorted(p.stem for p in SRC.glob("_*.pyx"))


def stub_names(path):
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets)
    return names


@pytest.mark.parametrize("name", COMPILED)
def test_every_public_name_of_a_compiled_module_is_in_its_stub(name):
    module = importlib.import_module(f"fastseg.{name}")
    public = {n for n, v in vars(module).items() if not n.startswith("_")
              and not isinstance(v, types.ModuleType)
              and getattr(v, "__module__", module.__name__) == module.__name__}
    stub = SRC / f"{name}.pyi"
    assert stub.exists(), f"{name}.pyx has no stub"
    assert public <= stub_names(stub), sorted(public - stub_names(stub))


def test_stubs_pass_mypy_strict():
    pytest.importorskip("mypy", reason="mypy not installed (pip install mypy)")
    stubs = [str(p.relative_to(SRC.parent)) for p in sorted(SRC.glob("*.pyi"))]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--no-incremental", *stubs], cwd=SRC.parent,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

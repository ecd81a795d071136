"""The .pyi stubs of the compiled modules: every public name has a declaration,
and mypy --strict accepts them."""
import ast
import importlib
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import fastseg

# The package as imported: the source tree, or an installed wheel (which
# ships the stubs but not the .pyx sources).
SRC = Path(fastseg.__file__).resolve().parent
COMPILED = sorted({p.name.split(".")[0] for p in SRC.glob("_*.*")
                   if p.suffix in (".pyx", ".so", ".pyd")})


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


def test_stubs_pass_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy not installed (pip install mypy)")
    # A copy of the package's Python files and stubs: mypy checks the stubs
    # the same way from a source tree and from site-packages.
    pkg = tmp_path / "fastseg"
    pkg.mkdir()
    for p in SRC.iterdir():
        if p.suffix in (".py", ".pyi") or p.name == "py.typed":
            shutil.copy(p, pkg / p.name)
        elif p.is_dir() and (p / "__init__.py").exists():
            shutil.copytree(p, pkg / p.name, ignore=shutil.ignore_patterns("__pycache__"))
    stubs = [str(p.relative_to(tmp_path)) for p in sorted(pkg.glob("*.pyi"))]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--no-incremental", *stubs], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

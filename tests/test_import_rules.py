"""remote/ and model/ never import the UI; only the rank side imports MindSpore (heavy: only ranks need it).

The rank side is `model.deepseek` (the network and its training loop); `model.train` and `model.predict`
are its entry points and import it only after their cheap argument and config checks. Everything the
console uses (config dialects, validation, estimates, the log format, the dataset format) stays light.
"""

import subprocess
import sys

import pytest

RANK_SIDE = "model.deepseek"

FORBIDDEN = {
    "remote": ("textual", "rich", "mindspore"),
    "model": ("textual", "rich", "mindspore"),
    "console": ("mindspore",),
}


def imported_by(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in done.stdout.split()}


def package_modules(package: str) -> list[str]:
    import pkgutil
    root = __import__(package)
    return [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_stays_clear_of_what_it_must_not_import(package: str):
    modules = [m for m in package_modules(package) if not m.startswith(RANK_SIDE)]
    assert len(modules) > 3, modules
    loaded = imported_by(modules)
    assert not loaded & set(FORBIDDEN[package]), f"{package} pulled in {loaded & set(FORBIDDEN[package])}"


def test_the_rank_side_uses_mindspore_but_never_the_ui():
    modules = [m for m in package_modules("model") if m.startswith(RANK_SIDE)]
    assert "model.deepseek.network" in modules
    loaded = imported_by(modules)
    assert "mindspore" in loaded
    assert not loaded & {"textual", "rich"}

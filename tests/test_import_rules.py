"""remote/ and model/ never import the UI; console/ never imports MindSpore (heavy: only ranks need it)."""

import subprocess
import sys

import pytest

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
    modules = package_modules(package)
    assert package == "model" or len(modules) > 3, modules
    loaded = imported_by(modules)
    assert not loaded & set(FORBIDDEN[package]), f"{package} pulled in {loaded & set(FORBIDDEN[package])}"

"""remote/ and model/ never import the UI; only the rank side imports MindSpore (heavy: only ranks need it).
model/ imports nothing else of ours: launch ships it alone to the nodes, and remote/ may use it.

The rank side is `model.deepseek` (the network and its training loop); `model.train`, `model.predict` and
`model.serve` (the OpenAI-compatible server) are its entry points and import it only after their cheap
argument and config checks. Everything the
console uses (config dialects, validation, estimates, the log format, the dataset format) stays light.
"""

import subprocess
import sys

import pytest

RANK_SIDE = "model.deepseek"

FORBIDDEN = {
    "remote": ("textual", "rich", "mindspore"),
    "model": ("textual", "rich", "mindspore", "remote", "console"),
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
    assert not loaded & {"textual", "rich", "remote", "console"}


def test_the_code_launch_ships_runs_on_its_own(tmp_path):
    """What `model`-style jobs copy to the nodes imports its config readers without the rest of us."""
    from pathlib import Path

    from remote.launch import code_files

    root = Path(__file__).resolve().parent.parent
    for name, data in code_files(root).items():
        assert name.startswith("model/"), name
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    code = ("import sys, model.train, model.predict, model.yamlsource\n"
            "print(model.yamlsource.__file__)\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    shipped, loaded = done.stdout.splitlines()
    assert Path(shipped).is_relative_to(tmp_path)
    assert not {"remote", "console"} & set(loaded.split())

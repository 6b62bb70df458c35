"""Keys or an agent only (issue 16, item 8): a cluster file that carries a password is refused, saying
why and what to use instead; the secret itself is never echoed back."""

from __future__ import annotations

import pytest

from remote.inventory import InventoryError, load_cluster_text


def problems_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_cluster_text(text, "lab.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("where", ["defaults", "node"])
@pytest.mark.parametrize("key", ["password", "passphrase"])
def test_a_password_in_a_cluster_file_is_refused_saying_keys_or_an_agent_only(where: str, key: str):
    secret = f"{key}: hunter2"
    text = (f"name: lab\ndefaults:\n  {secret}\nnodes:\n  - {{name: n0, host: 10.0.0.1}}\n"
            if where == "defaults" else f"name: lab\nnodes:\n  - {{name: n0, host: 10.0.0.1, {secret}}}\n")
    [problem] = problems_of(text)
    field = f"defaults.{key}" if where == "defaults" else f"nodes[0].{key}"
    assert problem.startswith(f"lab.yaml:3: {field}: "), problem
    assert "no password or passphrase is kept in a cluster file" in problem
    assert "identity_file" in problem and "SSH agent" in problem
    assert "hunter2" not in problem

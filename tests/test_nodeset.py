import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.nodeset import NodeSetError, expand, fold


def test_expand_ranges_lists_and_padding():
    assert expand("node[0-2,5]") == ["node0", "node1", "node2", "node5"]
    assert expand("gpu[08-10]") == ["gpu08", "gpu09", "gpu10"]
    assert expand("a,b[1-2]x,a") == ["a", "b1x", "b2x"]


@pytest.mark.parametrize("bad", ["node[1-", "node]", "node[a-b]", "node[3-1]", "a,,b"])
def test_bad_patterns_say_why(bad: str):
    with pytest.raises(NodeSetError):
        expand(bad)


def test_fold_groups_by_prefix_and_padding():
    assert fold(["node0", "node1", "node2", "node5"]) == "node[0-2,5]"
    assert fold(["gpu08", "gpu09", "bastion"]) == "gpu[08-09],bastion"
    assert fold(["node3"]) == "node3"


@given(st.sets(st.integers(min_value=0, max_value=300), min_size=1), st.sampled_from(["n", "node-", "a1b"]))
def test_fold_then_expand_gives_the_same_set(numbers: set[int], prefix: str):
    names = {f"{prefix}{n}" for n in numbers}
    assert set(expand(fold(names))) == names

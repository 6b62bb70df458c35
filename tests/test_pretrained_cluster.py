"""An mcore config's pretrained_model_dir/config.json, read from the first test node that has it, over SSH."""

import json
from pathlib import Path

import pytest

from console.jobs.pretrained import parse_job, read_pretrained
from model.config import defaulted_paths
from model.yamlsource import SourceError
from remote.inventory import Cluster, load_cluster
from tests.testcluster import TestCluster

pytestmark = pytest.mark.cluster

SAMPLES = Path(__file__).resolve().parent / "samples" / "configs" / "mindformers"
RECORDED = (SAMPLES / "deepseek-v3-config.json").read_text()
SMALL = json.dumps({"model_type": "deepseek_v3", "num_hidden_layers": 4, "hidden_size": 256,
                    "num_attention_heads": 8, "n_routed_experts": 16, "num_experts_per_tok": 2})
"""A hand-made tutorial-size config.json: MindFormers publishes none (tests/samples/.../README.md)."""


def put(test_cluster: TestCluster, host: str, directory: str, text: str) -> None:
    done = test_cluster.exec(host, ["sh", "-c", 'mkdir -p "$1" && printf %s "$2" > "$1/config.json"', "sh",
                                    directory, text])
    assert done.returncode == 0, done.stderr


def cluster_of(test_cluster: TestCluster, tmp_path: Path, known_hosts: Path) -> Cluster:
    return load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h0", "h1", "h2"],
                                                  known_hosts=known_hosts))


def test_config_json_is_read_from_the_first_node_that_has_it(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    base = f"{TestCluster.node_storage_path}/pretrained {tmp_path.name}"  # a space: paths travel as arguments
    put(test_cluster, "h1", f"{base}/v3", RECORDED)
    put(test_cluster, "h2", f"{base}/v3", SMALL)
    put(test_cluster, "h2", f"{base}/small", SMALL)
    cluster = cluster_of(test_cluster, tmp_path, known_hosts)

    v3 = read_pretrained(f"{base}/v3", cluster)
    assert v3.source == f"h1:{base}/v3/config.json" and v3.values["num_attention_heads"] == 128
    small = read_pretrained(f"{base}/small", cluster)
    assert small.source == f"h2:{base}/small/config.json" and small.values["num_hidden_layers"] == 4

    predict = (SAMPLES / "mcore_predict_deepseek3_671b.yaml").read_text()
    job = parse_job(predict.replace("/path/hf_dir", f"{base}/small"), "predict.yaml", cluster)
    assert (job.model.num_layers, job.model.num_heads, job.model.n_routed_experts) == (4, 8, 16)
    assert defaulted_paths(job)["model.model_config.num_attention_heads"] == "config.json"
    assert defaulted_paths(job)["model.model_config.q_lora_rank"] == "class default"
    assert job.warnings == ()


def test_a_directory_no_node_has_is_a_warning_naming_every_node(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    cluster = cluster_of(test_cluster, tmp_path, known_hosts)
    text = (SAMPLES / "mcore_predict_deepseek3_671b.yaml").read_text().replace("/path/hf_dir", "/nowhere/hf")
    job = parse_job(text, "predict.yaml", cluster)
    assert job.model.num_heads == 128 and job.defaulted["model.num_heads"] == "class default"
    [warning] = job.warnings
    assert warning == ("pretrained_model_dir /nowhere/hf could not be read (not on this host nor on h[0-2]: "
                       "head: cannot open '/nowhere/hf/config.json' for reading: No such file or directory): "
                       "the architecture the file leaves out is the model class's defaults")


def test_a_broken_config_json_on_a_node_is_an_error_naming_node_and_file(
        test_cluster: TestCluster, tmp_path: Path, known_hosts: Path):
    directory = f"{TestCluster.node_storage_path}/broken-{tmp_path.name}"
    put(test_cluster, "h0", directory, '{"num_attention_heads": "many"}')
    with pytest.raises(SourceError) as caught:
        read_pretrained(directory, cluster_of(test_cluster, tmp_path, known_hosts))
    assert str(caught.value) == (f"h0:{directory}/config.json: num_attention_heads: expected an integer, "
                                 f"got 'many'")

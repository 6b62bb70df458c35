"""hccn_tool parsers against the reference's samples and every documented word, and mangled copies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote.probes import UNKNOWN, first_line
from remote.probes.hccn import NET_HEALTH_WORDS, parse_ip, parse_link, parse_net_health
from tests.probes_samples import mangled, recording, sample, samples

HCCN = samples("hccn")
WORDS = sample("hccn/net-health-words.txt").splitlines()


def test_link_up_and_down():
    assert parse_link(HCCN["link-up.txt"]).state == "UP"
    down = parse_link(HCCN["source-link-down.txt"])
    assert (down.state, down.problem, down.raw) == ("DOWN", "", "link status: DOWN\n")


@pytest.mark.parametrize("word", WORDS)
def test_every_documented_net_health_word(word: str):
    health = parse_net_health(f"net health status: {word}\n")
    assert (health.word, health.ok, health.problem) == (word, word == "Success", "")


def test_the_word_list_matches_the_reference():
    assert set(WORDS) == set(NET_HEALTH_WORDS)


@pytest.mark.parametrize("name, word", [
    ("net-health-success.txt", "Success"), ("net-health-fault.txt", "Fault"),
    ("net-health-init.txt", "Init")])
def test_real_net_health_outputs(name: str, word: str):
    assert parse_net_health(HCCN[name]).word == word


def test_ip_and_netmask():
    assert (parse_ip(HCCN["ip-arthurchiao.txt"]).ip, parse_ip(HCCN["ip-arthurchiao.txt"]).netmask) == (
        "29.1.112.213", "255.255.0.0")
    address = parse_ip(HCCN["ip-yuanrong.txt"])
    assert (address.ip, address.netmask, address.problem) == ("10.86.1.80", "255.255.255.0", "")


def test_a_masked_address_is_not_an_address():
    address = parse_ip(HCCN["ip-masked.txt"])
    assert (address.ip, address.netmask) == (None, "255.255.255.0")
    assert "10.xx.xx.10" in address.problem


def test_each_parser_finds_its_own_line_in_a_combined_output():
    text = HCCN["yuanrong-expected.txt"]
    assert parse_link(text).state == "UP"
    assert parse_net_health(text).ok
    assert parse_ip(text).ip == "10.86.1.80"


@pytest.mark.parametrize("text", [
    "Cmd execute failed!\n", "The device is not exist!\n", "", "vnic link status: UP\n",
    HCCN["link-stat.txt"], "link status: UP\nlink status: DOWN\n", "link status: SIDEWAYS\n"])
def test_link_text_without_one_port_status_is_unknown(text: str):
    link = parse_link(text)
    assert link.state == UNKNOWN and link.raw == text
    assert first_line(text) in link.problem if text else "empty" in link.problem


@pytest.mark.parametrize("text", [
    "Get device health status failed!\n", "net health status: Sunny\n", "", "net health status:\n"])
def test_net_health_text_without_a_known_word_is_unknown(text: str):
    health = parse_net_health(text)
    assert (health.word, health.ok) == (UNKNOWN, False) and health.problem


def test_no_address_configured():
    address = parse_ip("Get ipconf failed, because no ip was preset there!\n")
    assert (address.ip, address.netmask) == (None, None)
    assert 'first line: "Get ipconf failed, because no ip was preset there!"' in address.problem
    assert parse_ip("vnic ipaddr: 192.168.1.199\n").ip is None


def test_stand_in_recordings():
    assert parse_link(recording("healthy", "hccn-link.txt")).state == "UP"
    assert parse_net_health(recording("healthy", "hccn-net-health.txt")).ok
    assert parse_ip(recording("healthy", "hccn-ip.txt")).ip == "10.86.1.80"
    assert parse_link(recording("link-down", "hccn-link.txt")).state == "DOWN"
    assert not parse_net_health(recording("link-down", "hccn-net-health.txt")).ok


TEXTS = mangled(list(HCCN.values())) | st.text()


def mentions_first_line(text: str, problem: str) -> bool:
    return first_line(text) in problem if first_line(text) else "empty" in problem


@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_mangled_or_arbitrary_text_never_raises(text: str):
    link, health, address = parse_link(text), parse_net_health(text), parse_ip(text)
    assert link.state in ("UP", "DOWN") or (link.state == UNKNOWN and mentions_first_line(text, link.problem))
    assert health.word in NET_HEALTH_WORDS or mentions_first_line(text, health.problem)
    assert address.ip is not None or mentions_first_line(text, address.problem)

"""The thread count and OpenMP wait policy chosen from the machine's load."""

import os

import torch

from gradnas import _openmp_policy
from gradnas.engine.threads import choose_threads


def test_passive_waiting_only_on_a_busy_machine_and_never_over_the_users_choice(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 0.5, 0.0, 0.0))
    env: dict[str, str] = {}
    assert (
        _openmp_policy.choose_wait_policy(env) == "PASSIVE" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    )
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert _openmp_policy.choose_wait_policy(env) is None and env["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))
    env = {}
    assert _openmp_policy.choose_wait_policy(env) is None and env == {}


def test_a_busy_machine_gets_one_thread_and_a_warning(monkeypatch):
    before = torch.get_num_threads()
    logged: list[str] = []
    try:
        cores = os.cpu_count() or 1
        monkeypatch.setattr(os, "getloadavg", lambda: (cores * 1.5, 0.0, 0.0))
        assert choose_threads(0, logged.append) == 1 and torch.get_num_threads() == 1
        assert "--threads" in logged[0]
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        torch.set_num_threads(before)
        logged.clear()
        assert choose_threads(0, logged.append) == before and not logged
        assert choose_threads(3, logged.append) == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_the_threads_flag_reaches_the_config(tmp_path):
    from gradnas.cli import _search_config, build_parser

    args = build_parser().parse_args(["search", "--threads", "2"])
    assert _search_config(args).threads == 2

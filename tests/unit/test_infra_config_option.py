"""`db` and `mq` take the monitoring file as `--infra-config`; `--config` names the
settings file there as in every other command. A monitoring file given the old way, as
`--config`, is still read as one, with a warning, instead of being ignored."""

from __future__ import annotations

from support import run_cli

UNREACHABLE = "databases:\n  - dsn: mysql://root:bad@127.0.0.1:1\n"


def db_status(tmp_path, option: str):
    """`db status OPTION FILE` with a monitoring file naming a server that refuses."""
    path = tmp_path / "infrastructure.yaml"
    path.write_text(UNREACHABLE)
    db = f"sqlite:///{tmp_path / 'sf.db'}"
    return run_cli("--db-url", db, "db", "status", option, str(path), "--interval", "0")


def test_db_status_reads_the_monitoring_file_given_as_infra_config(tmp_path):
    result = db_status(tmp_path, "--infra-config")
    assert result.code == 3
    assert "127.0.0.1:1: cannot connect" in result.stderr
    assert "deprecated" not in result.stderr


def test_a_monitoring_file_given_as_config_is_read_with_a_warning(tmp_path):
    result = db_status(tmp_path, "--config")
    assert result.code == 3
    assert "127.0.0.1:1: cannot connect" in result.stderr  # its target, not 127.0.0.1:3306
    assert "--config` for the monitoring file is deprecated: use --infra-config" in result.stderr


def test_rules_accept_the_old_config_option_with_a_warning(tmp_path):
    path = tmp_path / "infrastructure.yaml"
    path.write_text("message_queues: []\n")
    result = run_cli("mq", "rules", "--config", str(path), "-f", "json")
    assert result.code == 0, result.stderr
    assert "`mq rules --config` for the monitoring file is deprecated" in result.stderr
    assert "--config" not in run_cli("mq", "rules", "--help").stdout  # hidden

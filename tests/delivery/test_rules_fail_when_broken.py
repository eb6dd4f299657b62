"""Each rule of checks.py reports a violation when the real files are broken on purpose.

Most cases take the real terraform/buildspec text, apply one targeted edit, and assert
that the matching check now reports it; `_edit` fails if the text to break is gone, so
these tests cannot pass vacuously after a refactor.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import checks

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _edit(texts: dict[str, str], file: str, old: str, new: str, count: int = 1) -> dict[str, str]:
    assert old in texts[file], f"{old!r} no longer in {file}: update this negative test"
    out = dict(texts)
    out[file] = texts[file].replace(old, new, count)
    return out


def _broken(tf_texts, file, old, new, count=1) -> checks.Module:
    return checks.Module.from_texts(_edit(tf_texts, file, old, new, count))


def _added(tf_texts, text: str) -> checks.Module:
    out = dict(tf_texts)
    out["zz_broken.tf"] = text
    return checks.Module.from_texts(out)


def _has(problems: list[str], fragment: str) -> bool:
    return any(fragment in p for p in problems)


# --- parsing --------------------------------------------------------------------------

def test_unparseable_hcl_is_an_error():
    with pytest.raises(Exception):
        checks.parse_hcl('resource "aws_s3_bucket" "x" {\n  bucket = \n')


# --- references -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "file,old,new,expected",
    [
        ("network.tf", "aws_iam_role.flow_logs.arn", "aws_iam_role.flowlogs.arn", "undeclared resource aws_iam_role.flowlogs"),
        ("ecs.tf", "var.log_level", "var.log_lvl", "undeclared variable var.log_lvl"),
        ("alb.tf", "port                 = local.container_port", "port = local.container_prt",
         "undeclared local local.container_prt"),
        ("iam.tf", "data.aws_iam_policy_document.task.json", "data.aws_iam_policy_document.tsk.json",
         "undeclared data source data.aws_iam_policy_document.tsk"),
        ("kms.tf", "source = \"../kms\"", "source = \"../kms\"\n  x = module.kmss.key_arn", "undeclared module module.kmss"),
        # inside depends_on, inside a string nested in jsonencode(), inside for_each
        ("ecs.tf", "    aws_lb_listener.http_blue_green,", "    aws_lb_listener.htp,",
         "undeclared resource aws_lb_listener.htp"),
        ("main.tf", "image_tag       = var.image_tag", "image_tag       = var.image_tg",
         "undeclared variable var.image_tg"),
        ("lambda.tf", "aws_lb_target_group.picus_delete[0].arn\n  }", "aws_lb_target_group.picus_del[0].arn\n  }",
         "undeclared resource aws_lb_target_group.picus_del"),
        ("network.tf", "for_each = toset(var.allowed_cidrs)", "for_each = toset(var.allowed_cidr)",
         "undeclared variable var.allowed_cidr"),
    ],
)
def test_dangling_reference(tf_texts, file, old, new, expected):
    problems = checks.check_references(_broken(tf_texts, file, old, new))
    assert _has(problems, expected), problems


def test_dangling_module_reference(tf_texts):
    module = _added(tf_texts, 'output "x" {\n  description = "d"\n  value = module.nope.id\n}\n')
    assert _has(checks.check_references(module), "undeclared module module.nope")


# --- variables / outputs ------------------------------------------------------------------

def test_variable_without_description(tf_texts):
    module = _broken(tf_texts, "variables.tf",
                     '  description = "Number of availability zones to spread subnets and tasks over (at least 2)."\n', "")
    assert checks.check_variables_typed_and_described(module) == ["variable az_count has no description"]


def test_variable_without_type(tf_texts):
    module = _added(tf_texts, 'variable "untyped" {\n  description = "d"\n  default = 1\n}\n')
    assert checks.check_variables_typed_and_described(module) == ["variable untyped has no type"]


def test_output_without_description(pipeline_texts):
    module = _broken(pipeline_texts, "outputs.tf",
                     '  description = "Name of the CodePipeline pipeline."\n', "")
    assert checks.check_outputs_described(module) == ["output pipeline_name has no description"]


# --- IAM -----------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ['"ecr:*"', '"*"', '"dynamodb:*"'])
def test_wildcard_action(tf_texts, action):
    module = _broken(tf_texts, "iam.tf", '"dynamodb:DescribeTable"', action)
    assert _has(checks.check_iam_actions(module), "wildcard action")


def test_inline_json_policy_rejected(tf_texts):
    module = _added(tf_texts, '''
resource "aws_iam_role_policy" "inline" {
  role   = aws_iam_role.task.id
  policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
}
''')
    assert _has(checks.check_policies_use_documents(module), "aws_iam_role_policy.inline.policy")


def test_managed_policy_attachment_rejected(tf_texts):
    module = _added(tf_texts, '''
resource "aws_iam_role_policy_attachment" "admin" {
  role       = aws_iam_role.task.name
  policy_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
}
''')
    assert _has(checks.check_policies_use_documents(module), "aws_iam_role_policy_attachment.admin")


def test_star_resource_for_restrictable_action(tf_texts):
    module = _broken(tf_texts, "iam.tf", "resources = [aws_dynamodb_table.this.arn]", 'resources = ["*"]')
    problems = checks.check_wildcard_resources(module)
    assert _has(problems, 'dynamodb:PutItem on resource "*"'), problems


def test_star_resource_without_comment(tf_texts):
    module = _added(tf_texts, '''
data "aws_iam_policy_document" "uncommented" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}
''')
    problems = checks.check_wildcard_resources(module)
    assert problems == ['data.aws_iam_policy_document.uncommented statement 0: resources = ["*"] without a comment saying why']


def test_star_resource_in_key_policy_needs_the_key_policy_link(kms_texts):
    # The KMS document may use "*" only because it is attached as a key policy.
    module = _broken(kms_texts, "main.tf", "policy                  = data.aws_iam_policy_document.kms.json", "")
    assert _has(checks.check_wildcard_resources(module), "kms:Create* on resource")


def test_passrole_without_condition(tf_texts):
    module = _broken(tf_texts, "iam.tf", 'variable = "iam:PassedToService"', 'variable = "aws:SourceAccount"')
    assert _has(checks.check_passrole(module), "without an iam:PassedToService condition")


def test_passrole_on_any_role(tf_texts):
    module = _broken(tf_texts, "iam.tf", "resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]",
                     'resources = ["arn:aws:iam::123456789012:role/*"]')
    assert _has(checks.check_passrole(module), "must name role ARNs")


# --- network ----------------------------------------------------------------------------------

def test_ssh_ingress(tf_texts):
    module = _added(tf_texts, '''
resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.tasks.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "0.0.0.0/0"
}
''')
    assert checks.check_no_ssh_ingress(module) == ["aws_vpc_security_group_ingress_rule.ssh: ingress on port 22 (SSH)"]


def test_ssh_in_inline_range_and_all_protocols(tf_texts):
    module = _added(tf_texts, '''
resource "aws_security_group" "legacy" {
  name   = "legacy"
  vpc_id = aws_vpc.this.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 1024
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group_rule" "any" {
  type              = "ingress"
  security_group_id = aws_security_group.tasks.id
  protocol          = "-1"
  from_port         = 0
  to_port           = 0
  cidr_blocks       = ["10.0.0.0/8"]
}
''')
    problems = checks.check_no_ssh_ingress(module)
    assert _has(problems, "aws_security_group.legacy ingress: ingress on port 22")
    assert _has(problems, "aws_security_group_rule.any: all protocols")


def test_public_ip(tf_texts):
    module = _broken(tf_texts, "ecs.tf", "assign_public_ip = false", "assign_public_ip = true")
    assert _has(checks.check_no_public_ip(module), "assign_public_ip must be false")


def test_tasks_in_public_subnets(tf_texts):
    module = _broken(tf_texts, "ecs.tf", "subnets          = aws_subnet.private[*].id",
                     "subnets          = aws_subnet.public[*].id")
    assert _has(checks.check_no_public_ip(module), "aws_subnet.private")


# --- DynamoDB ---------------------------------------------------------------------------------

def test_table_keys_differ_from_code(module):
    problems = checks.check_table_matches_code(module, "PK", "SK")
    assert _has(problems, "hash_key 'pk' != code PARTITION_KEY 'PK'")
    assert _has(problems, "range_key 'sk' != code SORT_KEY 'SK'")


def test_table_keys_missing_in_code(module):
    problems = checks.check_table_matches_code(module, None, None)
    assert _has(problems, "PARTITION_KEY constant not found")


def test_table_key_type_differs(tf_texts):
    module = _broken(tf_texts, "dynamodb.tf", 'name = "sk"\n    type = "S"', 'name = "sk"\n    type = "N"')
    assert _has(checks.check_table_matches_code(module, "pk", "sk"), "'sk' has type 'N'")


def test_rust_constants_are_found(tmp_path):
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "schema.rs").write_text(
        'pub const PARTITION_KEY: &str = "pk";\npub const SORT_KEY: &\'static str = "sk";\n')
    assert checks.rust_key_constants(tmp_path) == ("pk", "sk")
    assert checks.rust_key_constants(tmp_path / "absent") == (None, None)


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ('billing_mode                = "PAY_PER_REQUEST"', 'billing_mode = "PROVISIONED"', "PAY_PER_REQUEST"),
        ("deletion_protection_enabled = true", "deletion_protection_enabled = false", "deletion_protection"),
        ("point_in_time_recovery {\n    enabled = true", "point_in_time_recovery {\n    enabled = false",
         "point_in_time_recovery"),
        ('attribute_name = "expires_at"', 'attribute_name = "ttl"', "TTL must be enabled on expires_at"),
    ],
)
def test_table_settings_broken(tf_texts, old, new, expected):
    assert _has(checks.check_table_settings(_broken(tf_texts, "dynamodb.tf", old, new)), expected)


# --- ECS ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "file,old,new,expected",
    [
        ("ecs.tf", "readonlyRootFilesystem = true", "readonlyRootFilesystem = false", "readonlyRootFilesystem"),
        ("ecs.tf", '{ name = "STORAGE", value = "dynamodb" },', '{ name = "STORAGE", value = "embedded" },', "STORAGE"),
        ("main.tf", "@${data.aws_ecr_image.bootstrap.image_digest}", ":latest", "latest tag"),
        # a tag (which may not exist yet, or be re-pointed) instead of the digest of an existing image
        ("main.tf", "@${data.aws_ecr_image.bootstrap.image_digest}", ":${var.image_tag}", "not pinned by digest"),
        ("ecs.tf", '"/usr/local/bin/telemetry", "healthcheck"]', '"/bin/sh", "-c", "curl localhost"]', "healthcheck"),
        ("ecs.tf", "task_role_arn            = aws_iam_role.task.arn",
         "task_role_arn            = aws_iam_role.execution.arn", "roles must differ"),
        # stopTimeout must exceed the service's 20 s drain
        ("variables.tf", "default     = 30\n\n  validation {\n    condition     = var.stop_timeout_seconds",
         "default     = 20\n\n  validation {\n    condition     = var.stop_timeout_seconds", "stopTimeout 20"),
        # the ALB must stop sending before ECS kills the task
        ("variables.tf", "default     = 15", "default     = 45", "deregistration_delay 45 must be < stopTimeout 30"),
    ],
)
def test_task_definition_broken(tf_texts, file, old, new, expected):
    problems = checks.check_task_definition(_broken(tf_texts, file, old, new))
    assert _has(problems, expected), problems


def test_terraform_owning_the_running_task_definition(tf_texts):
    # The old stack: Terraform and the pipeline both set the service's task definition, so
    # an apply with a stale image_tag rolled production back.
    module = _broken(tf_texts, "ecs.tf", "ignore_changes = [desired_count, task_definition, load_balancer]",
                     "ignore_changes = [desired_count]")
    assert _has(checks.check_service_deployment(module), "must list task_definition")


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("deployment_minimum_healthy_percent = 100", "deployment_minimum_healthy_percent = 50", "minimum_healthy"),
        ("deployment_maximum_percent         = 200", "deployment_maximum_percent = 150", "maximum_percent"),
        ("rollback = true", "rollback = false", "circuit breaker"),
        ("      rollback    = true", "      rollback    = false", "alarm-based rollback"),
    ],
)
def test_service_deployment_broken(tf_texts, old, new, expected):
    assert _has(checks.check_service_deployment(_broken(tf_texts, "ecs.tf", old, new)), expected)


def test_mutable_ecr_tags(pipeline_texts):
    module = _broken(pipeline_texts, "registry.tf", 'image_tag_mutability = "IMMUTABLE"', 'image_tag_mutability = "MUTABLE"')
    assert _has(checks.check_ecr(module), "IMMUTABLE")


# --- consistency across terraform / buildspec / Dockerfile ------------------------------------------

def test_container_name_mismatch(module, buildspec, dockerfile):
    bad = copy.deepcopy(buildspec)
    bad["env"]["variables"]["CONTAINER_NAME"] = "web"
    assert _has(checks.check_container_consistency(module, bad, dockerfile), "container name disagrees")


def test_container_port_mismatch_target_group(tf_texts, buildspec, dockerfile):
    module = _broken(tf_texts, "alb.tf", "port                 = local.container_port", "port = 8081")
    assert _has(checks.check_container_consistency(module, buildspec, dockerfile), "container port disagrees")


def test_container_port_mismatch_dockerfile(module, buildspec, dockerfile):
    bad = dockerfile.replace("EXPOSE 8080", "EXPOSE 3000")
    assert bad != dockerfile
    assert _has(checks.check_container_consistency(module, buildspec, bad), "Dockerfile EXPOSE=3000")


def test_container_name_mismatch_service(tf_texts, buildspec, dockerfile):
    module = _broken(tf_texts, "ecs.tf", "container_name   = local.container_name", 'container_name   = "app"')
    assert _has(checks.check_container_consistency(module, buildspec, dockerfile), "container name disagrees")


# --- buildspec / README -----------------------------------------------------------------------------

README_OK = "# x\n\n```sh\nscripts/test.sh\n```\n"


def _without(buildspec: dict, phase: str, predicate) -> dict:
    bad = copy.deepcopy(buildspec)
    bad["phases"][phase]["commands"] = [c for c in bad["phases"][phase]["commands"] if not predicate(c)]
    return bad


def _cargo_edited(buildspec: dict, old: str, new: str) -> dict:
    bad = copy.deepcopy(buildspec)
    edited = False
    for phase in bad["phases"].values():
        commands = phase.get("commands") or []
        for i, command in enumerate(commands):
            if old in str(command):
                commands[i] = str(command).replace(old, new)
                edited = True
    assert edited, f"{old!r} no longer in buildspec.yml: update this negative test"
    return bad


CARGO_TOML = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()


def test_buildspec_lambda_binary_unknown_to_cargo(buildspec):
    bad = _cargo_edited(buildspec, "--bin telemetry-lambda", "--bin telemetry-lambd")
    problems = checks.check_buildspec_cargo(bad, CARGO_TOML)
    assert _has(problems, "--bin 'telemetry-lambd', which Cargo.toml does not declare")
    assert _has(problems, "does not build the telemetry-lambda binary")


def test_buildspec_lambda_without_its_feature(buildspec):
    bad = _cargo_edited(buildspec, "--features lambda", "")
    assert _has(checks.check_buildspec_cargo(bad, CARGO_TOML), "without its required features ['lambda']")
    bad = _cargo_edited(buildspec, "--features lambda", "--features lambda-http")
    assert _has(checks.check_buildspec_cargo(bad, CARGO_TOML), "feature 'lambda-http', which Cargo.toml does not declare")


def test_buildspec_test_command_missing(buildspec):
    bad = _without(buildspec, "pre_build", lambda c: c == "scripts/test.sh")
    assert _has(checks.check_buildspec(bad, README_OK), "does not run `scripts/test.sh`")


def test_readme_without_test_command(buildspec):
    problems = checks.check_buildspec(buildspec, "# x\n\nRun scripts/test.sh\n\n```sh\ncargo test\n```\n")
    assert _has(problems, "no fenced line that is exactly `scripts/test.sh`")


def test_readme_missing(buildspec):
    assert _has(checks.check_buildspec(buildspec, None), "README.md not found")


def test_tests_after_image_build(buildspec):
    bad = _without(buildspec, "pre_build", lambda c: c == "scripts/test.sh")
    bad["phases"]["post_build"] = {"commands": ["scripts/test.sh"]}
    assert _has(checks.check_buildspec(bad, README_OK), "does not run `scripts/test.sh` in pre_build/build")
    bad2 = copy.deepcopy(bad)
    bad2["phases"]["build"]["commands"].append("scripts/test.sh")
    assert _has(checks.check_buildspec(bad2, README_OK), "builds the image before running the tests")


def test_buildspec_missing_phase(buildspec):
    bad = copy.deepcopy(buildspec)
    del bad["phases"]["install"]
    problems = checks.check_buildspec(bad, README_OK)
    assert _has(problems, "phase install is missing")
    assert _has(problems, "rustup")


def test_buildspec_pushes_latest_only(buildspec):
    bad = copy.deepcopy(buildspec)
    cmds = bad["phases"]["build"]["commands"]
    bad["phases"]["build"]["commands"] = [
        c.replace("${IMAGE_TAG}", "latest") if isinstance(c, str) and c.startswith("docker") else c for c in cmds
    ]
    assert _has(checks.check_buildspec(bad, README_OK), "pushes only `latest`")


def test_buildspec_without_password_stdin_login(buildspec):
    bad = copy.deepcopy(buildspec)
    bad["phases"]["pre_build"]["commands"] = [
        c for c in bad["phases"]["pre_build"]["commands"] if "get-login-password" not in c
    ] + ["docker login -u AWS -p \"$(aws ecr get-login-password)\" \"${ECR_REGISTRY}\""]
    assert _has(checks.check_buildspec(bad, README_OK), "get-login-password")


def test_buildspec_without_image_artifact(buildspec):
    bad = copy.deepcopy(buildspec)
    bad["artifacts"]["secondary-artifacts"]["image"]["files"] = ["something-else.json"]
    assert _has(checks.check_buildspec(bad, README_OK), "image.json is not in the `image` secondary artifact")
    no_lambda = copy.deepcopy(buildspec)
    del no_lambda["artifacts"]["secondary-artifacts"]["lambda"]
    assert _has(checks.check_buildspec(no_lambda, README_OK), "no `lambda` secondary artifact")


def test_buildspec_without_digest(buildspec):
    bad = copy.deepcopy(buildspec)
    bad["phases"]["build"]["commands"] = [c for c in bad["phases"]["build"]["commands"] if "imageDigest" not in c]
    assert _has(checks.check_buildspec(bad, README_OK), "digest")


def test_toolchain_mismatch(buildspec, dockerfile):
    bad = copy.deepcopy(buildspec)
    bad["env"]["variables"]["RUST_TOOLCHAIN"] = "1.80"
    problems = checks.check_toolchain_pins(bad, dockerfile, 'rust-version = "1.95"\n')
    assert _has(problems, "!= Dockerfile rust:1.95") and _has(problems, "Cargo.toml rust-version 1.95")
    no_clippy = copy.deepcopy(buildspec)
    no_clippy["phases"]["install"]["commands"] = [
        c.replace("--component clippy", "") for c in no_clippy["phases"]["install"]["commands"]]
    assert _has(checks.check_toolchain_pins(no_clippy, dockerfile, None), "clippy")


def test_checkov_skip_without_reason_or_docs(pipeline_texts):
    texts = _edit(pipeline_texts, "codebuild.tf", "#checkov:skip=CKV_AWS_316:Privileged mode is required",
                  "#checkov:skip=CKV_AWS_316:\n  #checkov:skip=CKV_AWS_999:Privileged mode is required")
    problems = checks.check_checkov_skips(texts, "| CKV_AWS_316 |")
    assert _has(problems, "CKV_AWS_316 without a real reason")
    assert _has(problems, "CKV_AWS_999 is not listed in terraform/README.md")


# --- external linters on known-bad fixtures ------------------------------------------------------------

def _tool(name: str) -> str:
    path = os.environ.get(f"{name.upper()}_BIN") or shutil.which(name)
    if not path:
        pytest.skip(f"{name} not installed (scripts/delivery-checks.sh provides it)")
    return path


def test_hadolint_rejects_bad_dockerfile():
    run = subprocess.run([_tool("hadolint"), str(FIXTURES / "bad.Dockerfile")], capture_output=True, text=True)
    assert run.returncode != 0
    assert "DL3007" in run.stdout  # FROM ...:latest


def test_yamllint_rejects_bad_buildspec():
    run = subprocess.run([_tool("yamllint"), "-c", str(checks.REPO_ROOT / ".yamllint.yml"),
                          str(FIXTURES / "bad_buildspec.yml")], capture_output=True, text=True)
    assert run.returncode != 0
    assert "duplication of key" in run.stdout


def test_bad_buildspec_fixture_fails_our_checks():
    bad = yaml.safe_load((FIXTURES / "bad_buildspec.yml").read_text())
    problems = checks.check_buildspec(bad, README_OK)
    assert _has(problems, "pushes only `latest`") and _has(problems, "does not run `scripts/test.sh`")


def test_checkov_rejects_bad_terraform():
    run = subprocess.run([_tool("checkov"), "-d", str(FIXTURES / "bad_tf"), "--quiet", "--compact",
                          "--framework", "terraform", "--skip-download"], capture_output=True, text=True)
    assert run.returncode != 0, run.stdout
    assert "CKV_AWS_24" in run.stdout  # SSH open to the world


def test_bad_tf_fixture_fails_our_checks():
    module = checks.Module.from_dir(FIXTURES / "bad_tf")
    assert _has(checks.check_no_ssh_ingress(module), "port 22")
    assert _has(checks.check_iam_actions(module), "wildcard action")
    assert _has(checks.check_variables_typed_and_described(module), "has no description")
    assert _has(checks.check_references(module), "undeclared variable var.missing")


# --- terraform versions, lock files, PassRole across states ----------------------------------------

def test_required_version_below_use_lockfile(tf_texts):
    module = _broken(tf_texts, "versions.tf", 'required_version = ">= 1.10.0, < 2.0.0"', 'required_version = ">= 1.6.0, < 2.0.0"')
    assert _has(checks.check_required_version(module, minimum=(1, 10)), "older than 1.10")


def test_missing_or_foreign_lock_file(module):
    assert checks.check_provider_lock(module, None) == [".terraform.lock.hcl is not committed"]
    foreign = 'provider "registry.terraform.io/hashicorp/aws" {\n  version = "6.4.0"\n  hashes = ["h1:x"]\n}\n'
    assert _has(checks.check_provider_lock(module, foreign), "outside the pinned major version 5")


def test_passrole_through_a_wildcard_local(pipeline_texts):
    module = _broken(pipeline_texts, "iam.tf", '"${local.arn_prefix.iam}:role/${e.task_role_name}",',
                     '"${local.arn_prefix.iam}:role/*",')
    assert _has(checks.check_passrole(module), "must name role ARNs")

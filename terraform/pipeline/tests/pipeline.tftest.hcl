# The shared pipeline planned and applied against a mocked AWS provider: stage order, the
# environment each deploy targets, the digest handed from Build to both deploys, IAM scope.

mock_provider "aws" {
  source = "../mocks"
}

run "stages" {
  command = apply

  assert {
    condition     = [for s in aws_codepipeline.this.stage : s.name] == ["Source", "Build", "DeployTest", "SmokeTest", "Approve", "DeployProd"]
    error_message = "Source -> Build -> DeployTest -> SmokeTest -> Approve -> DeployProd"
  }

  # The prod stage deploys the prod service (the seed's pipeline deployed prod to test).
  assert {
    condition = {
      for v in jsondecode(aws_codepipeline.this.stage[5].action[0].configuration.EnvironmentVariables) : v.name => v.value
      if contains(["ENVIRONMENT", "CLUSTER", "SERVICE", "TASK_FAMILY"], v.name)
      } == {
      ENVIRONMENT = "prod", CLUSTER = "telemetry-prod", SERVICE = "telemetry-prod", TASK_FAMILY = "telemetry-prod"
    }
    error_message = "DeployProd must target cluster/service/family telemetry-prod"
  }
  assert {
    condition = {
      for v in jsondecode(aws_codepipeline.this.stage[2].action[0].configuration.EnvironmentVariables) : v.name => v.value
      if contains(["ENVIRONMENT", "CLUSTER", "SERVICE", "TASK_FAMILY"], v.name)
      } == {
      ENVIRONMENT = "test", CLUSTER = "telemetry-test", SERVICE = "telemetry-test", TASK_FAMILY = "telemetry-test"
    }
    error_message = "DeployTest must target cluster/service/family telemetry-test"
  }

  # One build, one image: both deploys consume the Build stage's "image" artifact.
  assert {
    condition = (aws_codepipeline.this.stage[1].action[0].output_artifacts == tolist(["image", "lambda"]) &&
      contains(aws_codepipeline.this.stage[2].action[0].input_artifacts, "image") &&
      contains(aws_codepipeline.this.stage[5].action[0].input_artifacts, "image") &&
    aws_codepipeline.this.stage[2].action[0].configuration.ProjectName == aws_codepipeline.this.stage[5].action[0].configuration.ProjectName)
    error_message = "test and prod must deploy the same build output with the same deploy project"
  }

  assert {
    condition = (aws_codepipeline.this.stage[3].action[0].category == "Test" &&
      aws_codepipeline.this.stage[3].action[0].configuration.ProjectName == aws_codebuild_project.smoke.name &&
    aws_codepipeline.this.stage[4].action[0].category == "Approval" && aws_codepipeline.this.stage[4].action[0].provider == "Manual")
    error_message = "the smoke test runs before a manual approval"
  }

  assert {
    condition = anytrue([for e in aws_codebuild_project.smoke.environment[0].environment_variable :
    e.name == "SERVICE_URL" && e.type == "PARAMETER_STORE" && e.value == "/telemetry/test/service-url"])
    error_message = "the smoke test reads the test environment's URL"
  }

  # The deploy role may update exactly the two services and pass exactly their task roles.
  assert {
    condition = [for s in data.aws_iam_policy_document.deploy_environments.statement : s.resources if contains(s.actions, "ecs:UpdateService")] == [toset([
      "arn:aws:ecs:eu-west-1:123456789012:service/telemetry-test/telemetry-test",
      "arn:aws:ecs:eu-west-1:123456789012:service/telemetry-prod/telemetry-prod",
    ])]
    error_message = "UpdateService only on the test and prod services"
  }
  assert {
    condition = [for s in data.aws_iam_policy_document.deploy_environments.statement : s.resources if contains(s.actions, "iam:PassRole")] == [toset([
      "arn:aws:iam::123456789012:role/telemetry-test-ecs-execution",
      "arn:aws:iam::123456789012:role/telemetry-test-ecs-task",
      "arn:aws:iam::123456789012:role/telemetry-prod-ecs-execution",
      "arn:aws:iam::123456789012:role/telemetry-prod-ecs-task",
    ])]
    error_message = "PassRole only for the environments' two ECS roles"
  }

  assert {
    condition     = anytrue([for e in aws_codebuild_project.build.environment[0].environment_variable : e.name == "BUILD_LAMBDA" && e.value == "false"])
    error_message = "the Lambda is not built unless switched on"
  }

  assert {
    condition     = length(aws_iam_role.github_deploy) == 0 && length(aws_iam_openid_connect_provider.github) == 0
    error_message = "no GitHub role unless github_repository is set"
  }

  assert {
    condition     = length(aws_s3_bucket.artifacts.bucket_prefix) <= 37
    error_message = "the artifact bucket prefix must be at most 37 characters"
  }
}

run "longest_name" {
  command = apply

  variables {
    name = "abcdefghijklmnopqrst"
  }

  assert {
    condition     = length(aws_s3_bucket.artifacts.bucket_prefix) <= 37 && alltrue([for r in aws_iam_role.codebuild : length(r.name) <= 64])
    error_message = "bucket prefix (37) and role names (64) must fit for the longest name"
  }
}

run "name_longer_than_20_is_rejected" {
  command = plan

  variables {
    name = "abcdefghijklmnopqrstuvwxyz12345" # 31 was accepted before and broke the limits
  }

  expect_failures = [var.name]
}

run "lambda_switch" {
  command = apply

  variables {
    lambda_delete_enabled = true
  }

  assert {
    condition     = anytrue([for e in aws_codebuild_project.build.environment[0].environment_variable : e.name == "BUILD_LAMBDA" && e.value == "true"])
    error_message = "the switch builds the Lambda zip"
  }
  assert {
    condition = {
      for v in jsondecode(aws_codepipeline.this.stage[5].action[0].configuration.EnvironmentVariables) : v.name => v.value if v.name == "LAMBDA_FUNCTION"
    } == { LAMBDA_FUNCTION = "telemetry-prod-picus-delete" }
    error_message = "DeployProd updates the prod function"
  }
}

run "github_oidc" {
  command = apply

  variables {
    github_repository = "example-org/telemetry"
    github_branch     = "main"
  }

  assert {
    condition     = aws_iam_openid_connect_provider.github[0].url == "https://token.actions.githubusercontent.com" && aws_iam_openid_connect_provider.github[0].client_id_list == toset(["sts.amazonaws.com"])
    error_message = "the OIDC provider trusts GitHub's issuer for STS"
  }
  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.github_assume.statement : anytrue([for c in s.condition :
    c.variable == "token.actions.githubusercontent.com:sub" && c.test == "StringEquals" && tolist(c.values) == tolist(["repo:example-org/telemetry:ref:refs/heads/main"])])])
    error_message = "only pushes to main of this repository may assume the role"
  }
  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.github_assume.statement : anytrue([for c in s.condition :
    c.variable == "token.actions.githubusercontent.com:aud" && tolist(c.values) == tolist(["sts.amazonaws.com"])])])
    error_message = "the token's audience must be STS"
  }
  assert {
    condition     = length(aws_iam_role.github_deploy) == 1 && length(aws_iam_role_policy.github_deploy) == 1
    error_message = "the deploy role exists with its policy"
  }
}

# One role per job. Every policy is an aws_iam_policy_document scoped to the ARNs it needs.
# Resource "*" appears only for actions that support no resource-level permission, each
# marked with a comment; tests/delivery keeps that list explicit (WILDCARD_RESOURCE_ACTIONS).
# The environments' resources live in other states: they are named by modules/naming.

locals {
  env_service_arns = [for e in local.environments : "${local.arn_prefix.ecs}:service/${e.cluster_name}/${e.service_name}"]
  env_cluster_arns = [for e in local.environments : "${local.arn_prefix.ecs}:cluster/${e.cluster_name}"]
  env_task_role_arns = flatten([for e in local.environments : [
    "${local.arn_prefix.iam}:role/${e.execution_role_name}",
    "${local.arn_prefix.iam}:role/${e.task_role_name}",
  ]])
  env_task_definition_arns = [for e in local.environments : "${local.arn_prefix.ecs}:task-definition/${e.task_family}:*"]
  env_codedeploy_arns = flatten([for e in local.environments : [
    "${local.arn_prefix.deploy}:application:${e.codedeploy_app_name}",
    "${local.arn_prefix.deploy}:deploymentgroup:${e.codedeploy_app_name}/${e.codedeploy_group_name}",
  ]])
  env_lambda_arns = [for e in local.environments : "${local.arn_prefix.lambda}:function:${e.lambda_function_name}"]
}

data "aws_iam_policy_document" "codebuild_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codebuild" {
  for_each = local.codebuild_projects

  name               = "${each.value}-codebuild"
  description        = "CodeBuild project ${each.value}"
  assume_role_policy = data.aws_iam_policy_document.codebuild_assume.json
}

# --- build: tests, image push, Lambda zip --------------------------------------------------

data "aws_iam_policy_document" "codebuild_build" {
  statement {
    sid       = "BuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild["build"].arn}:*"]
  }

  statement {
    sid       = "ReadSourceWriteArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "ArtifactBucketLocation"
    actions   = ["s3:GetBucketLocation", "s3:GetBucketAcl"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken supports no resource-level permission
  }

  statement {
    sid = "PushServiceImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:DescribeImages", # the digest of the pushed (or, on a retry, already pushed) tag
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "ArtifactAndImageEncryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
  }
}

# --- deploy: register the family's next revision with the new digest, roll it out ---------

data "aws_iam_policy_document" "codebuild_deploy" {
  statement {
    sid       = "DeployLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild["deploy"].arn}:*"]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "DecryptArtifacts"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
  }

  source_policy_documents = [data.aws_iam_policy_document.deploy_environments.json]
}

# What deploying to the environments takes; shared with the GitHub deploy role.
data "aws_iam_policy_document" "deploy_environments" {
  statement {
    sid = "ReadAndRegisterTaskDefinitions"
    # The deploy reads the family's latest revision and registers the next one.
    actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"]
    resources = ["*"] # DescribeTaskDefinition/RegisterTaskDefinition support no resource-level permission
  }

  statement {
    sid       = "TagTaskDefinitions"
    actions   = ["ecs:TagResource"]
    resources = local.env_task_definition_arns
  }

  statement {
    sid       = "UpdateTheServices"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = local.env_service_arns
  }

  statement {
    sid       = "PassOnlyTheEnvironmentsTaskRoles"
    actions   = ["iam:PassRole"]
    resources = local.env_task_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid = "BlueGreenDeployments"
    actions = [
      "codedeploy:CreateDeployment",
      "codedeploy:GetDeployment",
      "codedeploy:GetDeploymentConfig",
      "codedeploy:GetApplicationRevision",
      "codedeploy:RegisterApplicationRevision",
    ]
    resources = concat(local.env_codedeploy_arns, [
      "${local.arn_prefix.deploy}:deploymentconfig:CodeDeployDefault.ECSAllAtOnce",
    ])
  }

  statement {
    sid       = "DeleteFunctionCode"
    actions   = ["lambda:UpdateFunctionCode", "lambda:GetFunction", "lambda:GetFunctionConfiguration"]
    resources = local.env_lambda_arns
  }
}

# --- smoke: read the test URL and the smoke tokens ---------------------------------------

data "aws_iam_policy_document" "codebuild_smoke" {
  statement {
    sid       = "SmokeLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild["smoke"].arn}:*"]
  }

  statement {
    sid       = "ReadSource"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "TestServiceUrl"
    actions   = ["ssm:GetParameters"]
    resources = ["${local.arn_prefix.ssm}:parameter${module.test.service_url_parameter}"]
  }

  statement {
    sid       = "SmokeTokens"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.smoke_tokens.arn]
  }

  statement {
    sid       = "DecryptSourceAndTokens"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
  }
}

resource "aws_iam_role_policy" "codebuild_build" {
  name   = "test-build-push"
  role   = aws_iam_role.codebuild["build"].id
  policy = data.aws_iam_policy_document.codebuild_build.json
}

resource "aws_iam_role_policy" "codebuild_deploy" {
  name   = "deploy-environments"
  role   = aws_iam_role.codebuild["deploy"].id
  policy = data.aws_iam_policy_document.codebuild_deploy.json
}

resource "aws_iam_role_policy" "codebuild_smoke" {
  name   = "smoke-test"
  role   = aws_iam_role.codebuild["smoke"].id
  policy = data.aws_iam_policy_document.codebuild_smoke.json
}

# --- CodePipeline: orchestrate source, build, deploy, smoke, approval -------------------------

data "aws_iam_policy_document" "codepipeline_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codepipeline.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codepipeline" {
  name               = "${var.name}-codepipeline"
  description        = "CodePipeline: CodeCommit source, CodeBuild build/deploy/smoke, approval of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.codepipeline_assume.json
}

data "aws_iam_policy_document" "codepipeline" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "ArtifactBucket"
    actions   = ["s3:GetBucketVersioning", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  statement {
    sid       = "ArtifactEncryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid = "Source"
    actions = [
      "codecommit:GetBranch",
      "codecommit:GetCommit",
      "codecommit:GetRepository",
      "codecommit:UploadArchive",
      "codecommit:GetUploadArchiveStatus",
      "codecommit:CancelUploadArchive",
    ]
    resources = [aws_codecommit_repository.this.arn]
  }

  statement {
    sid       = "RunTheProjects"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds"]
    resources = [aws_codebuild_project.build.arn, aws_codebuild_project.deploy.arn, aws_codebuild_project.smoke.arn]
  }

  statement {
    sid       = "ApprovalNotifications"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.approvals.arn]
  }
}

resource "aws_iam_role_policy" "codepipeline" {
  name   = "source-build-deploy-approve"
  role   = aws_iam_role.codepipeline.id
  policy = data.aws_iam_policy_document.codepipeline.json
}

# --- EventBridge: start the pipeline on push --------------------------------------------

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${var.name}-events"
  description        = "EventBridge: starts the ${var.name} pipeline on CodeCommit pushes"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "events" {
  statement {
    actions   = ["codepipeline:StartPipelineExecution"]
    resources = [aws_codepipeline.this.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "start-pipeline"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

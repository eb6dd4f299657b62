# CodeCommit push -> EventBridge -> CodePipeline:
#   Source -> Build (tests; the image is built and pushed once, identified by its digest)
#   -> DeployTest -> SmokeTest -> Approve (manual) -> DeployProd (the same digest).

locals {
  # What the deploy project needs to know about one environment (scripts/deploy.sh).
  deploy_variables = {
    for env, names in local.environments : env => jsonencode([
      { name = "ENVIRONMENT", value = env, type = "PLAINTEXT" },
      { name = "CLUSTER", value = names.cluster_name, type = "PLAINTEXT" },
      { name = "SERVICE", value = names.service_name, type = "PLAINTEXT" },
      { name = "TASK_FAMILY", value = names.task_family, type = "PLAINTEXT" },
      { name = "CODEDEPLOY_APP", value = names.codedeploy_app_name, type = "PLAINTEXT" },
      { name = "CODEDEPLOY_GROUP", value = names.codedeploy_group_name, type = "PLAINTEXT" },
      { name = "LAMBDA_FUNCTION", value = var.lambda_delete_enabled ? names.lambda_function_name : "", type = "PLAINTEXT" },
    ])
  }
}

resource "aws_sns_topic" "approvals" {
  name              = "${var.name}-approvals"
  kms_master_key_id = module.kms.key_arn
}

resource "aws_sns_topic_subscription" "approvals_email" {
  count = var.approval_email == null ? 0 : 1

  topic_arn = aws_sns_topic.approvals.arn
  protocol  = "email"
  endpoint  = var.approval_email
}

resource "aws_codepipeline" "this" {
  name          = var.name
  role_arn      = aws_iam_role.codepipeline.arn
  pipeline_type = "V2"

  artifact_store {
    type     = "S3"
    location = aws_s3_bucket.artifacts.bucket

    encryption_key {
      type = "KMS"
      id   = module.kms.key_arn
    }
  }

  stage {
    name = "Source"
    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      output_artifacts = ["source"]
      configuration = {
        RepositoryName       = aws_codecommit_repository.this.repository_name
        BranchName           = var.repository_branch
        PollForSourceChanges = "false" # the EventBridge rule below starts the pipeline
        OutputArtifactFormat = "CODE_ZIP"
      }
    }
  }

  stage {
    name = "Build"
    action {
      name             = "TestBuildPush"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      input_artifacts  = ["source"]
      output_artifacts = ["image", "lambda"]
      configuration = {
        ProjectName = aws_codebuild_project.build.name
      }
    }
  }

  stage {
    name = "DeployTest"
    action {
      name            = "Deploy"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source", "image", "lambda"]
      configuration = {
        ProjectName          = aws_codebuild_project.deploy.name
        PrimarySource        = "source"
        EnvironmentVariables = local.deploy_variables["test"]
      }
    }
  }

  stage {
    name = "SmokeTest"
    action {
      name            = "Smoke"
      category        = "Test"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source"]
      configuration = {
        ProjectName = aws_codebuild_project.smoke.name
      }
    }
  }

  stage {
    name = "Approve"
    action {
      name     = "PromoteToProd"
      category = "Approval"
      owner    = "AWS"
      provider = "Manual"
      version  = "1"
      configuration = {
        NotificationArn = aws_sns_topic.approvals.arn
        CustomData      = "Promote the image that passed ${module.test.prefix} (same digest) to ${module.prod.prefix}."
      }
    }
  }

  stage {
    name = "DeployProd"
    action {
      name            = "Deploy"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source", "image", "lambda"]
      configuration = {
        ProjectName          = aws_codebuild_project.deploy.name
        PrimarySource        = "source"
        EnvironmentVariables = local.deploy_variables["prod"]
      }
    }
  }
}

# Start the pipeline on every push to the branch (instead of polling).
resource "aws_cloudwatch_event_rule" "on_push" {
  name        = "${var.name}-on-push"
  description = "Start the ${var.name} pipeline on pushes to ${var.repository_branch}"
  event_pattern = jsonencode({
    source        = ["aws.codecommit"]
    "detail-type" = ["CodeCommit Repository State Change"]
    resources     = [aws_codecommit_repository.this.arn]
    detail = {
      event         = ["referenceCreated", "referenceUpdated"]
      referenceType = ["branch"]
      referenceName = [var.repository_branch]
    }
  })
}

resource "aws_cloudwatch_event_target" "pipeline" {
  rule     = aws_cloudwatch_event_rule.on_push.name
  arn      = aws_codepipeline.this.arn
  role_arn = aws_iam_role.events.arn
}

# Three CodeBuild projects: build (../buildspec.yml: tests, image pushed once, Lambda zip),
# deploy (one environment per run, told which by the pipeline action's variables) and
# smoke (the test environment's /api/ready and a PUT/GET round trip).

locals {
  codebuild_projects = {
    build  = "${var.name}-build"
    deploy = "${var.name}-deploy"
    smoke  = "${var.name}-smoke"
  }
}

resource "aws_cloudwatch_log_group" "codebuild" {
  for_each = local.codebuild_projects

  name              = "/aws/codebuild/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
}

resource "aws_codebuild_project" "build" {
  #checkov:skip=CKV_AWS_316:Privileged mode is required to run the Docker daemon that builds the image; the project runs only this repository's buildspec.
  name           = local.codebuild_projects.build
  description    = "Tests, builds and pushes the ${var.name} image once (buildspec.yml); the Lambda zip when switched on"
  service_role   = aws_iam_role.codebuild["build"].arn
  encryption_key = module.kms.key_arn
  build_timeout  = 120 # tests (fmt, clippy, unit, contract, DynamoDB Local) + release image build

  source {
    type      = "CODEPIPELINE"
    buildspec = "buildspec.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  cache {
    type  = "LOCAL"
    modes = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_CUSTOM_CACHE"]
  }

  environment {
    type            = "LINUX_CONTAINER"
    image           = "aws/codebuild/standard:7.0"
    compute_type    = var.codebuild_compute_type
    privileged_mode = true

    environment_variable {
      name  = "ECR_REPOSITORY_URL"
      value = aws_ecr_repository.this.repository_url
    }

    environment_variable {
      name  = "ECR_REPOSITORY_NAME"
      value = aws_ecr_repository.this.name
    }

    environment_variable {
      name  = "ECR_REGISTRY"
      value = split("/", aws_ecr_repository.this.repository_url)[0]
    }

    environment_variable {
      name  = "ARTIFACT_BUCKET"
      value = aws_s3_bucket.artifacts.bucket
    }

    environment_variable {
      name  = "BUILD_LAMBDA"
      value = tostring(var.lambda_delete_enabled)
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild["build"].name
    }
  }
}

resource "aws_codebuild_project" "deploy" {
  name           = local.codebuild_projects.deploy
  description    = "Deploys the built image digest (and Lambda zip) to one ${var.name} environment"
  service_role   = aws_iam_role.codebuild["deploy"].arn
  encryption_key = module.kms.key_arn
  build_timeout  = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = file("${path.module}/buildspecs/deploy.yml")
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type         = "LINUX_CONTAINER"
    image        = "aws/codebuild/standard:7.0"
    compute_type = "BUILD_GENERAL1_SMALL"

    environment_variable {
      name  = "CONTAINER_NAME"
      value = local.container_name
    }

    environment_variable {
      name  = "CONTAINER_PORT"
      value = tostring(local.container_port)
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild["deploy"].name
    }
  }
}

resource "aws_codebuild_project" "smoke" {
  name           = local.codebuild_projects.smoke
  description    = "Smoke test of the ${module.test.prefix} environment: /api/ready and a PUT/GET round trip"
  service_role   = aws_iam_role.codebuild["smoke"].arn
  encryption_key = module.kms.key_arn
  build_timeout  = 10

  source {
    type      = "CODEPIPELINE"
    buildspec = file("${path.module}/buildspecs/smoke.yml")
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type         = "LINUX_CONTAINER"
    image        = "aws/codebuild/standard:7.0"
    compute_type = "BUILD_GENERAL1_SMALL"

    environment_variable {
      name  = "SERVICE_URL"
      type  = "PARAMETER_STORE"
      value = module.test.service_url_parameter
    }

    environment_variable {
      name  = "SMOKE_WRITE_TOKEN"
      type  = "SECRETS_MANAGER"
      value = "${aws_secretsmanager_secret.smoke_tokens.arn}:write"
    }

    environment_variable {
      name  = "SMOKE_READ_TOKEN"
      type  = "SECRETS_MANAGER"
      value = "${aws_secretsmanager_secret.smoke_tokens.arn}:read"
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild["smoke"].name
    }
  }
}

# {"write": "<token>", "read": "<token>"}: plain tokens the smoke stage sends to the test
# environment, whose API_TOKENS lists them (hashed). Value put by an operator.
resource "aws_secretsmanager_secret" "smoke_tokens" {
  #checkov:skip=CKV2_AWS_57:The smoke tokens are rotated by an operator together with the test environment's API_TOKENS (terraform/README.md, "Tokens").
  name                    = "${var.name}/smoke-tokens"
  description             = "Write and read tokens of the smoke stage against ${module.test.prefix} (JSON: write, read)"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

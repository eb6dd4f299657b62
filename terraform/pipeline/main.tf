# The delivery stack shared by the environments (its own state): CodeCommit, the image
# registry, the artifact bucket, CodeBuild (build, deploy, smoke), CodePipeline and the
# optional GitHub deploy role. One registry and one pipeline for all environments, so prod
# runs exactly the image digest that passed test; the environments (environments/<env>)
# are addressed by the names in modules/naming.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

module "test" {
  source      = "../modules/naming"
  name        = var.name
  environment = var.test_environment
}

module "prod" {
  source      = "../modules/naming"
  name        = var.name
  environment = var.prod_environment
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Must match buildspec.yml (CONTAINER_NAME) and modules/service (local.container_name).
  container_name = "telemetry"
  container_port = 8080

  environments = { test = module.test, prod = module.prod }

  arn_prefix = {
    ecs    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
    iam    = "arn:${local.partition}:iam::${local.account_id}"
    lambda = "arn:${local.partition}:lambda:${local.region}:${local.account_id}"
    deploy = "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}"
    ssm    = "arn:${local.partition}:ssm:${local.region}:${local.account_id}"
  }

  tags = merge(var.tags, {
    Project   = var.name
    ManagedBy = "terraform"
  })
}

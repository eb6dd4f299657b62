# One environment (test, prod, ...) of the service: network, load balancer, ECS service,
# table, key, secrets, alarms. Instantiated once per environment by environments/<env>,
# each with its own state. The image registry and the pipeline are shared (pipeline/).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

# Fargate runs only in the region's own zones: Local Zones and Wavelength Zones an account
# has opted into are "available" too, so keep only zones that need no opt-in.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first var.az_count zone names (sorted) are used via slice() in local.azs; a newly added zone does not change that set.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

module "names" {
  source      = "../naming"
  name        = var.name
  environment = var.environment
}

# The shared registry (created by pipeline/) and the image the task definition registers
# first. The lookup fails the plan when the image is missing, instead of creating a service
# whose tasks can never start; see terraform/README.md "First image".
data "aws_ecr_repository" "service" {
  name = var.ecr_repository_name == null ? var.name : var.ecr_repository_name
}

data "aws_ecr_image" "bootstrap" {
  repository_name = data.aws_ecr_repository.service.name
  image_tag       = var.image_tag
  most_recent     = var.image_tag == null ? true : null
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  prefix = module.names.prefix
  azs    = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # Must match buildspec.yml (CONTAINER_NAME) and the Dockerfile's EXPOSE; a test checks it.
  container_name = "telemetry"
  container_port = 8080

  table_name = "${local.prefix}-data"

  blue_green = var.deployment == "blue_green"

  bootstrap_image = "${data.aws_ecr_repository.service.repository_url}@${data.aws_ecr_image.bootstrap.image_digest}"
}

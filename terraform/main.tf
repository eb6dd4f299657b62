data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first var.az_count zone names (sorted) are used via slice() in local.azs; a newly added zone does not change that set.
  state = "available"
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # Must match buildspec.yml (CONTAINER_NAME) and the Dockerfile's EXPOSE; a test checks it.
  container_name = "telemetry"
  container_port = 8080

  table_name = "${var.name}-data"

  tags = merge(var.tags, {
    Project   = var.name
    ManagedBy = "terraform"
  })
}

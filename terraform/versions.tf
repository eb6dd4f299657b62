terraform {
  # 1.6+ for `check` blocks and cross-object preconditions; 2.x is untested.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.84 added availability_zone_rebalancing on aws_ecs_service.
      version = ">= 5.84.0, < 6.0.0"
    }
  }

  # State holds ARNs and resource ids; never commit it. Use a remote backend, e.g.:
  #
  # backend "s3" {
  #   bucket       = "my-org-terraform-state"          # versioned, encrypted, private
  #   key          = "telemetry/prod/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true                              # S3-native locking (terraform >= 1.10)
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

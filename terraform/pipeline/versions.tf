terraform {
  # 1.10+: the S3 backend's native locking (use_lockfile); 2.x is untested.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.84.0, < 6.0.0"
    }
  }

  # Partial configuration: bucket, region, encrypt and use_lockfile come from
  # -backend-config=../backend.hcl (terraform/README.md, "Remote state").
  backend "s3" {
    key = "telemetry/pipeline.tfstate"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

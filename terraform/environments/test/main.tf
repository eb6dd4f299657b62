# The test environment: one instance of modules/service with its own state. Apply
# pipeline/ first (the registry), and push once (the first image): terraform/README.md.

terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.84.0, < 6.0.0"
    }
  }

  # Partial configuration: bucket, region, encrypt and use_lockfile come from
  # -backend-config=../../backend.hcl (terraform/README.md, "Remote state").
  backend "s3" {
    key = "telemetry/test.tfstate"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Project = var.name, Environment = "test", ManagedBy = "terraform" })
  }
}

module "service" {
  source = "../../modules/service"

  name        = var.name
  environment = "test"
  image_tag   = var.image_tag
  deployment  = var.deployment

  vpc_cidr        = var.vpc_cidr
  allowed_cidrs   = var.allowed_cidrs
  domain_name     = var.domain_name
  route53_zone_id = var.route53_zone_id
  certificate_arn = var.certificate_arn

  alb_deletion_protection = true
  desired_count           = 1
  min_capacity            = var.min_capacity
  max_capacity            = var.max_capacity

  metrics_public        = var.metrics_public
  metrics_scrape_cidrs  = var.metrics_scrape_cidrs
  metrics_token_enabled = var.metrics_token_enabled

  lambda_delete_enabled = var.lambda_delete_enabled
  lambda_s3_bucket      = var.lambda_s3_bucket
  lambda_s3_key         = var.lambda_s3_key
  lambda_api_tokens     = var.lambda_api_tokens

  alarm_email = var.alarm_email
}

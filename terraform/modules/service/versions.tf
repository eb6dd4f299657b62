terraform {
  # 1.10+: the S3 backend's native locking (use_lockfile) that the environment roots use;
  # 2.x is untested.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.84 added availability_zone_rebalancing on aws_ecs_service. ECS-native blue/green
      # needs >= 6.4; this stack stays on 5.x and does blue/green with CodeDeploy.
      version = ">= 5.84.0, < 6.0.0"
    }
  }
}

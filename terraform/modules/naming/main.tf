# Names of one environment's resources, shared by the environment stacks
# (modules/service) and the pipeline stack (pipeline/), which live in separate states:
# the pipeline addresses each environment's cluster, service, roles and secrets by these
# names, so both sides compute them here and nowhere else.

terraform {
  required_version = ">= 1.10.0, < 2.0.0"
}

variable "name" {
  description = "Project name prefix (at most 20 characters, see modules/service)."
  type        = string
}

variable "environment" {
  description = "Environment name, e.g. test or prod (at most 5 characters)."
  type        = string
}

locals {
  prefix = "${var.name}-${var.environment}"
}

output "prefix" {
  description = "Prefix of every name in the environment: <name>-<environment>."
  value       = local.prefix
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = local.prefix
}

output "service_name" {
  description = "ECS service name."
  value       = local.prefix
}

output "task_family" {
  description = "ECS task definition family."
  value       = local.prefix
}

output "execution_role_name" {
  description = "IAM role of the ECS agent (pulls the image, reads the secrets, writes logs)."
  value       = "${local.prefix}-ecs-execution"
}

output "task_role_name" {
  description = "IAM role of the service itself."
  value       = "${local.prefix}-ecs-task"
}

output "codedeploy_app_name" {
  description = "CodeDeploy application (blue/green deployments only)."
  value       = local.prefix
}

output "codedeploy_group_name" {
  description = "CodeDeploy deployment group (blue/green deployments only)."
  value       = local.prefix
}

output "lambda_function_name" {
  description = "Lambda function serving DELETE /picus/* when that switch is on."
  value       = "${local.prefix}-picus-delete"
}

output "service_url_parameter" {
  description = "SSM parameter holding the environment's base URL (read by the smoke stage)."
  value       = "/${var.name}/${var.environment}/service-url"
}

output "api_tokens_secret_name" {
  description = "Secrets Manager secret holding API_TOKENS."
  value       = "${local.prefix}/api-tokens"
}
